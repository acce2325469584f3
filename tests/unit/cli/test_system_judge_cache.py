from pathlib import Path

from services.cli.system import LocalSystem


def test_the_local_judge_caches_in_the_gateways_redis_unless_told_otherwise(tmp_path: Path) -> None:
    system = LocalSystem(
        tmp_path, tmp_path / "catalog.csv", redis_url="redis://127.0.0.1:6390/0", base_env={}
    )
    env = system.env()
    assert env["TAILSYNTH_JUDGE_CACHE_URL"] == env["TAILSYNTH_REDIS_URL"] == "redis://127.0.0.1:6390/0"
    off = LocalSystem(
        tmp_path,
        tmp_path / "catalog.csv",
        redis_url="redis://127.0.0.1:6390/0",
        base_env={"TAILSYNTH_JUDGE_CACHE_URL": ""},
    )
    assert off.env()["TAILSYNTH_JUDGE_CACHE_URL"] == ""
