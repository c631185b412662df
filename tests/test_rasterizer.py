"""Rasterizers against analytic cases (triangle, cube, occlusion, perspective), UV texel maps, and backend parity."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import CONFIGS

from models.camera import project_to_pixels
from models.structures import InputError
from models.texture import Fragments, TorchRasterizer, uv_texel_map

TEXTURE_CONFIGS = CONFIGS / "texture"


def ellipsoid_mesh(rings: int, segments: int, radii: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed latitude-longitude ellipsoid, rings*segments + 2 vertices and 2*rings*segments faces, counter-clockwise
    seen from outside."""
    theta = torch.linspace(0, math.pi, rings + 2)[1:-1, None]
    phi = torch.arange(segments)[None, :] * (2 * math.pi / segments)
    ring = torch.stack(
        [radii[0] * torch.sin(theta) * torch.cos(phi), -radii[1] * torch.cos(theta).expand(-1, segments),
         radii[2] * torch.sin(theta) * torch.sin(phi)], -1
    ).reshape(-1, 3)
    vertices = torch.cat([torch.tensor([[0.0, -radii[1], 0.0]]), ring, torch.tensor([[0.0, radii[1], 0.0]])])
    r, s = torch.arange(rings - 1)[:, None], torch.arange(segments)[None, :]
    a, b = 1 + r * segments + s, 1 + r * segments + (s + 1) % segments
    quads = torch.stack([a, b + segments, b, a, a + segments, b + segments], -1).reshape(-1, 3)
    s = torch.arange(segments)
    last_ring = 1 + (rings - 1) * segments
    top = torch.stack([torch.zeros_like(s), 1 + s, 1 + (s + 1) % segments], -1)
    bottom = torch.stack([torch.full_like(s, len(vertices) - 1), last_ring + (s + 1) % segments, last_ring + s], -1)
    return vertices, torch.cat([top, quads, bottom])


def cube_mesh(centre: tuple[float, float, float], half: float) -> tuple[torch.Tensor, torch.Tensor]:
    """An axis-aligned cube, 8 vertices and 12 faces counter-clockwise seen from outside; faces 0-1 are z = min."""
    corners = torch.tensor([[x, y, z] for z in (-1, 1) for y in (-1, 1) for x in (-1, 1)], dtype=torch.float32)
    faces = torch.tensor(
        [[0, 3, 1], [0, 2, 3], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4],
         [2, 6, 7], [2, 7, 3], [0, 4, 6], [0, 6, 2], [1, 3, 7], [1, 7, 5]]
    )
    return corners * half + torch.tensor(centre), faces


def pixel_centres(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """u, v of every pixel centre, H×W each."""
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    return u, v


def test_triangle_covers_exactly_its_pixel_centres_with_exact_barycentrics_and_depth() -> None:
    corners = np.array([[3.3, 2.1], [27.8, 9.7], [8.6, 21.2]])
    depth = 2.0 + 0.05 * corners[:, 0] - 0.03 * corners[:, 1]  # a plane in screen space
    points = torch.tensor(np.c_[corners, depth], dtype=torch.float32)[None]
    fragments = TorchRasterizer().rasterize_screen(points, torch.tensor([[0, 1, 2]]), (24, 32))

    u, v = pixel_centres(24, 32)
    edges = [(corners[(k + 1) % 3], corners[(k + 2) % 3]) for k in range(3)]
    signs = np.sign([(b[0] - a[0]) * (v - a[1]) - (b[1] - a[1]) * (u - a[0]) for a, b in edges])
    inside = np.abs(signs.sum(0)) == 3
    assert inside.sum() > 100
    np.testing.assert_array_equal(fragments.covered[0].numpy(), inside)
    bary = fragments.bary[0][fragments.covered[0]].double().numpy()
    np.testing.assert_allclose(bary @ corners, np.c_[u[inside], v[inside]], atol=1e-4)
    expected_depth = 2.0 + 0.05 * u[inside] - 0.03 * v[inside]
    np.testing.assert_allclose(fragments.depth[0][fragments.covered[0]].numpy(), expected_depth, atol=1e-5)
    assert torch.isinf(fragments.depth[0][~fragments.covered[0]]).all()
    assert (fragments.bary[0][~fragments.covered[0]] == 0).all()


@pytest.mark.parametrize("cull_backfaces", [False, True])
def test_cube_seen_head_on_shows_its_front_square_at_its_depth(cull_backfaces: bool) -> None:
    vertices, faces = cube_mesh((0.0, 0.0, 5.0), 1.0)
    fragments = TorchRasterizer(cull_backfaces=cull_backfaces).rasterize(
        vertices[None], faces, 100.0, torch.tensor([32.0, 32.0]), (64, 64)
    )
    # The front face z = 4 spans x, y in [-1, 1]: pixels 32 ± 25, i.e. columns and rows 7..56.
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[7:57, 7:57] = True
    assert torch.equal(fragments.covered[0], expected)
    assert set(fragments.face_index[0][expected].unique().tolist()) == {0, 1}
    torch.testing.assert_close(fragments.depth[0][expected], torch.full((50 * 50,), 4.0), atol=1e-5, rtol=0)


def test_back_faces_are_culled_only_when_asked() -> None:
    vertices, faces = cube_mesh((0.0, 0.0, 5.0), 1.0)
    back_only = faces[2:4]  # z = max, seen from behind
    args = (vertices[None], back_only, 100.0, torch.tensor([32.0, 32.0]), (64, 64))
    assert TorchRasterizer(cull_backfaces=False).rasterize(*args).covered.sum() > 0
    assert TorchRasterizer(cull_backfaces=True).rasterize(*args).covered.sum() == 0


@pytest.mark.parametrize("near_first", [True, False])
def test_nearer_triangle_wins_whatever_the_face_order(near_first: bool) -> None:
    near = [[2.0, 2.0, 1.0], [20.0, 3.0, 1.0], [4.0, 18.0, 1.0]]
    far = [[8.0, 6.0, 3.0], [30.0, 8.0, 3.0], [10.0, 22.0, 3.0]]
    points = torch.tensor([near + far if near_first else far + near])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fragments = TorchRasterizer().rasterize_screen(points, faces, (24, 32))
    near_face = 0 if near_first else 1
    alone = {
        face: TorchRasterizer().rasterize_screen(points, faces[face : face + 1], (24, 32)).covered[0]
        for face in (0, 1)
    }
    overlap = alone[0] & alone[1]
    assert overlap.sum() > 10
    assert (fragments.face_index[0][overlap] == near_face).all()
    assert torch.equal(fragments.covered[0], alone[0] | alone[1])
    torch.testing.assert_close(fragments.depth[0][overlap], torch.ones(int(overlap.sum())))


def test_perspective_barycentrics_follow_the_3d_surface() -> None:
    vertices = torch.tensor([[-0.8, -0.6, 2.0], [0.9, -0.3, 6.0], [-0.2, 0.8, 3.5]], dtype=torch.float64)
    focal, centre = torch.tensor([60.0, 55.0]), torch.tensor([33.0, 30.0])
    fragments = TorchRasterizer().rasterize(vertices[None].float(), torch.tensor([[0, 1, 2]]), focal, centre, (64, 72))
    covered = fragments.covered[0]
    assert covered.sum() > 300

    rows, columns = covered.nonzero().unbind(1)
    rays = torch.stack(
        [(columns + 0.5 - centre[0]) / focal[0], (rows + 0.5 - centre[1]) / focal[1], torch.ones(len(rows))], 1
    ).double()
    normal = torch.linalg.cross(vertices[1] - vertices[0], vertices[2] - vertices[0])
    hits = rays * ((normal @ vertices[0]) / (rays @ normal))[:, None]
    surface = fragments.bary[0][covered].double() @ vertices
    torch.testing.assert_close(surface, hits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fragments.depth[0][covered].double(), hits[:, 2], atol=1e-4, rtol=1e-5)
    # Screen-space (affine) barycentrics differ: the test above would fail without perspective correction.
    corners = project_to_pixels(vertices[None], focal, centre)[0, :, :2]
    affine = torch.linalg.solve(
        torch.cat([corners.T, torch.ones(1, 3, dtype=corners.dtype)]),
        torch.stack([columns + 0.5, rows + 0.5, torch.ones(len(rows))]).double(),
    ).T
    assert (affine - fragments.bary[0][covered].double()).abs().max() > 0.05


def test_projection_is_a_pinhole_with_per_mesh_focal_and_principal_point() -> None:
    vertices = torch.tensor([[[0.5, -0.25, 2.0]], [[0.5, -0.25, 4.0]]])
    pixels = project_to_pixels(vertices, torch.tensor([[100.0, 80.0], [50.0, 50.0]]), torch.tensor([10.0, 20.0]))
    torch.testing.assert_close(pixels, torch.tensor([[[35.0, 10.0, 2.0]], [[16.25, 16.875, 4.0]]]))


def test_batch_equals_meshes_one_by_one_and_chunking_changes_nothing() -> None:
    torch.manual_seed(0)
    vertices, faces = ellipsoid_mesh(14, 18, (0.5, 0.8, 0.4))
    batch = vertices[None] + torch.tensor([[0.0, 0.0, 3.0]]) + 0.2 * torch.randn(3, 1, 3)
    focal, centre = torch.tensor([[70.0, 70.0], [60.0, 65.0], [80.0, 80.0]]), torch.full((3, 2), 32.0)
    together = TorchRasterizer().rasterize(batch, faces, focal, centre, (64, 64))
    assert together.covered.float().mean() > 0.2
    for index in range(3):
        alone = TorchRasterizer().rasterize(batch[index : index + 1], faces, focal[index], centre[index], (64, 64))
        assert torch.equal(alone.face_index[0], together.face_index[index])
        torch.testing.assert_close(alone.bary[0], together.bary[index], atol=1e-6, rtol=0)
        torch.testing.assert_close(alone.depth[0], together.depth[index], atol=1e-6, rtol=0)
    chunked = TorchRasterizer(max_candidates=64).rasterize(batch, faces, focal, centre, (64, 64))
    assert torch.equal(chunked.face_index, together.face_index)
    torch.testing.assert_close(chunked.depth, together.depth, atol=1e-6, rtol=0)


def test_closed_mesh_has_no_holes_hides_its_back_and_drops_faces_behind_the_camera() -> None:
    vertices, faces = ellipsoid_mesh(20, 24, (0.6, 0.6, 0.6))
    args = ((vertices + torch.tensor([0.0, 0.0, 3.0]))[None], faces, 40.0, torch.tensor([16.0, 16.0]), (32, 32))
    inside = TorchRasterizer().rasterize(*args)
    assert torch.equal(TorchRasterizer(cull_backfaces=True).rasterize(*args).face_index, inside.face_index)
    # The silhouette of a sphere is a disc: no background pixel strictly inside it.
    u, v = pixel_centres(32, 32)
    radius = 40.0 * 0.6 / math.sqrt(3.0**2 - 0.6**2) * 0.95  # inscribed in the polygonal silhouette
    disc = torch.from_numpy((u - 16.0) ** 2 + (v - 16.0) ** 2 < radius**2)
    assert inside.covered[0][disc].all()
    behind = TorchRasterizer().rasterize((vertices - torch.tensor([0.0, 0.0, 3.0]))[None], faces, 40.0,
                                         torch.tensor([16.0, 16.0]), (32, 32))
    assert behind.covered.sum() == 0


def test_empty_inputs_give_background() -> None:
    rasterizer = TorchRasterizer()
    no_faces = rasterizer.rasterize_screen(torch.rand(2, 5, 3), torch.zeros((0, 3), dtype=torch.int64), (4, 6))
    no_meshes = rasterizer.rasterize(torch.zeros(0, 5, 3), torch.tensor([[0, 1, 2]]), 10.0, torch.zeros(2), (4, 6))
    for fragments, batch in ((no_faces, 2), (no_meshes, 0)):
        assert isinstance(fragments, Fragments)
        assert fragments.face_index.shape == (batch, 4, 6) and fragments.bary.shape == (batch, 4, 6, 3)
        assert (fragments.face_index == -1).all() and torch.isinf(fragments.depth).all()
    off_image = rasterizer.rasterize_screen(torch.tensor([[[-9.0, -9.0, 1.0], [-2.0, -9.0, 1.0], [-9.0, -1.0, 1.0]]]),
                                            torch.tensor([[0, 1, 2]]), (4, 6))
    assert off_image.covered.sum() == 0


def test_bad_mesh_input_raises_input_error() -> None:
    rasterizer = TorchRasterizer()
    with pytest.raises(InputError, match="faces"):
        rasterizer.rasterize_screen(torch.rand(1, 3, 3), torch.tensor([[0, 1, 3]]), (4, 4))
    with pytest.raises(InputError, match="B×V×3"):
        rasterizer.rasterize_screen(torch.rand(3, 3), torch.tensor([[0, 1, 2]]), (4, 4))
    with pytest.raises(InputError, match="focal"):
        rasterizer.rasterize(torch.rand(2, 3, 3), torch.tensor([[0, 1, 2]]), torch.ones(3), torch.zeros(2), (4, 4))


def test_uv_square_of_two_triangles_covers_every_texel() -> None:
    vt = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    ft = np.array([[0, 1, 2], [0, 2, 3]])
    for size in (256, 37):
        texels = uv_texel_map(vt, ft, size)
        assert texels.face_index.shape == (size, size) and texels.bary.shape == (size, size, 3)
        assert texels.covered.all()
        # Face 0 is the half u > v: texel row 0 is v = 1, so it holds the bottom-right texel, not the top-left.
        assert texels.face_index[-1, -1] == 0 and texels.face_index[0, 0] == 1


def test_uv_layout_with_islands_places_texels_where_they_belong_and_is_cached() -> None:
    # Two islands: a 6×4 grid of quads over [0.05, 0.65]×[0.1, 0.5] and one triangle in the top-right corner.
    grid_u, grid_v = np.meshgrid(np.linspace(0.05, 0.65, 7), np.linspace(0.1, 0.5, 5))
    vt = np.concatenate([np.c_[grid_u.ravel(), grid_v.ravel()], [[0.7, 0.6], [0.95, 0.6], [0.95, 0.95]]])
    quad = np.arange(5 * 7).reshape(5, 7)[:-1, :-1].ravel()
    ft = np.concatenate([np.c_[quad, quad + 1, quad + 8], np.c_[quad, quad + 8, quad + 7], [[35, 36, 37]]])
    size = 200
    texels = uv_texel_map(vt, ft, size)

    area, perimeter = 0.6 * 0.4 + 0.5 * 0.25 * 0.35, 2 * (0.6 + 0.4) + 0.25 + 0.35 + math.hypot(0.25, 0.35)
    assert abs(texels.covered.float().mean().item() - area) < perimeter / size
    rows, columns = texels.covered.nonzero().unbind(1)
    centres = np.c_[(columns.numpy() + 0.5) / size, 1.0 - (rows.numpy() + 0.5) / size]
    corners = vt[ft[texels.face_index[texels.covered].numpy()]]  # texels × 3 corners × uv
    placed = np.einsum("tk,tkc->tc", texels.bary[texels.covered].double().numpy(), corners)
    np.testing.assert_allclose(placed, centres, atol=1e-5)
    assert (texels.face_index[texels.covered] == 48).sum() > 0.9 * 0.5 * 0.25 * 0.35 * size**2
    assert uv_texel_map(torch.from_numpy(vt), torch.from_numpy(ft), size) is texels


def test_bad_uv_layout_raises_input_error() -> None:
    with pytest.raises(InputError, match="vt"):
        uv_texel_map(np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 1.0]]), np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="ft"):
        uv_texel_map(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([[0, 1, 3]]))


def test_texture_configs_build_their_rasterizer() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(TEXTURE_CONFIGS), version_base=None):
        config = compose(config_name="torch")
    assert isinstance(instantiate(config.rasterizer), TorchRasterizer)
    assert config.uv_size == 256


def _pytorch3d_rasterizer(cull_backfaces: bool):
    """The PyTorch3D backend, or a skip saying why it cannot run here."""
    from models.texture.pytorch3d_rasterizer import PyTorch3DRasterizer

    try:
        return PyTorch3DRasterizer(cull_backfaces=cull_backfaces)
    except InputError as error:
        pytest.skip(f"PyTorch3D backend unavailable on this machine: {error}")


def test_pytorch3d_backend_missing_is_one_clear_sentence() -> None:
    from models.texture.pytorch3d_rasterizer import PyTorch3DRasterizer

    try:
        PyTorch3DRasterizer()
    except InputError as error:
        message = str(error)
        assert "easypytorch3d" in message or "CUDA" in message
        assert "texture=torch" in message and message.count(". ") == 0
    else:
        pytest.skip("PyTorch3D is importable here, so its absence cannot be tested")


@pytest.mark.parametrize(("mesh", "cull_backfaces"), [("body", False), ("cube", False), ("cube", True)])
def test_pytorch3d_and_torch_backends_agree(mesh: str, cull_backfaces: bool) -> None:
    reference = _pytorch3d_rasterizer(cull_backfaces)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    if mesh == "body":  # SMPL-sized: 6,890 vertices, 13,776 faces, a person filling a 256×256 crop
        vertices, faces = ellipsoid_mesh(82, 84, (0.22, 0.85, 0.15))
        vertices = vertices[None] + torch.tensor([0.0, 0.0, 4.0]) + 0.05 * torch.randn(4, 1, 3)
        size, focal = (256, 256), torch.full((4, 2), 540.0)
    else:
        vertices, faces = cube_mesh((0.2, -0.1, 5.0), 1.0)
        angle = 0.5
        turn = torch.tensor([[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0],
                             [-math.sin(angle), 0.0, math.cos(angle)]])
        vertices = ((vertices - torch.tensor([0.2, -0.1, 5.0])) @ turn.T + torch.tensor([0.2, -0.1, 5.0]))[None]
        size, focal = (60, 80), torch.tensor([[70.0, 75.0]])
    centre = torch.tensor([size[1] / 2 + 1.3, size[0] / 2 - 2.1]).expand(len(vertices), 2)
    args = (vertices.to(device), faces.to(device), focal.to(device), centre.to(device), size)
    ours, theirs = TorchRasterizer(cull_backfaces=cull_backfaces).rasterize(*args), reference.rasterize(*args)

    covered = ours.covered | theirs.covered
    same_face = (ours.face_index == theirs.face_index) & covered
    assert same_face.sum() >= 0.995 * covered.sum()
    torch.testing.assert_close(ours.depth[same_face], theirs.depth[same_face], atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.bary[same_face], theirs.bary[same_face], atol=1e-3, rtol=0)
