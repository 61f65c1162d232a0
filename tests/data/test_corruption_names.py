import json
from pathlib import Path

from nofrost.data.corruptions import BENCHMARK_CORRUPTIONS, SEVERITIES, list_corruptions


def test_names_are_the_15_benchmark_then_4_extra():
    names = list_corruptions()
    assert len(names) == len(set(names)) == 19
    assert names[:15] == list(BENCHMARK_CORRUPTIONS)
    assert names[15:] == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    assert SEVERITIES == (1, 2, 3, 4, 5)


def test_benchmark_order_matches_published_list(shared_data: Path):
    meta = json.loads((shared_data / "imagenet_meta.json").read_text())
    assert list(BENCHMARK_CORRUPTIONS) == meta["imagenet_c_corruptions"]
