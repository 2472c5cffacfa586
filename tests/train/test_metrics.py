import numpy as np
import pytest

from mdr_graph.train.metrics import pearson, rankdata, regression_metrics, spearman


def test_rankdata_averages_ties():
    assert rankdata(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_hand_computed():
    # ranks x: 1..5 ; y: 2,1,4,3,5 -> d^2 = 1+1+1+1+0 = 4 ; rho = 1 - 6*4/(5*24) = 0.8
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([0.2, 0.1, 0.4, 0.3, 0.5])
    assert spearman(x, y) == pytest.approx(0.8)
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_spearman_is_over_the_whole_split_not_batch_means():
    rng = np.random.default_rng(0)
    t = rng.normal(size=400)
    p = t + rng.normal(scale=1.0, size=400)
    whole = spearman(t, p)
    per_batch = np.mean([spearman(t[i:i + 8], p[i:i + 8]) for i in range(0, 400, 8)])
    assert whole != pytest.approx(per_batch, abs=1e-3)


def test_constant_prediction_gives_nan_and_pearson_matches_numpy():
    assert np.isnan(spearman(np.arange(5), np.ones(5)))
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    m = regression_metrics(a, b)
    assert m["mse"] == pytest.approx(np.mean((a - b) ** 2)) and m["n"] == 50


def test_scatter_image_places_points_and_diagonal():
    import numpy as np

    from mdr_graph.train.loop import scatter_image

    img = scatter_image(np.array([0.0, 1.0, 0.5, 0.5, 0.2]), np.array([0.0, 1.0, 0.5, 0.5, np.nan]), size=11)
    assert img.shape == (3, 11, 11) and img.dtype == np.uint8
    gray = img[0]
    assert gray[10, 0] < 170 and gray[0, 10] < 170          # (0, 0) bottom-left, (1, 1) top-right
    assert gray[5, 5] < gray[10, 0]                            # the pixel holding two videos is darker
    assert gray[0, 0] == 255 and gray[10, 10] == 255           # empty corners stay white
    assert gray[3, 7] == 170                                   # the diagonal is drawn where no point lies
    assert scatter_image(np.array([]), np.array([])).shape == (3, 160, 160)
