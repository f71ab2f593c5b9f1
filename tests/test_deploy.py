"""deploy/compose.yaml, checked without a container engine: the replicas' environment, and every file it names."""

from __future__ import annotations

import re

import pytest

from service.settings import Settings
from tests.conftest import REPO

yaml = pytest.importorskip("yaml")

DEPLOY = REPO / "deploy"
REPLICAS = ("policyqa-1", "policyqa-2")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_it_runs_milvus_standalone_with_etcd_and_minio_an_ingest_two_replicas_and_a_proxy(compose):
    services = compose["services"]
    assert set(services) == {"etcd", "minio", "standalone", "ingest", *REPLICAS, "proxy"}
    standalone = services["standalone"]
    assert standalone["command"] == ["milvus", "run", "standalone"]
    assert standalone["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert standalone["environment"]["MINIO_ADDRESS"] == "minio:9000"
    assert set(standalone["depends_on"]) == {"etcd", "minio"}
    assert services["ingest"]["command"][:2] == ["policyqa", "ingest"]


@pytest.mark.parametrize("name", [*REPLICAS, "ingest"])
def test_each_policyqa_service_is_the_repos_image_over_milvus(compose, name):
    service = compose["services"][name]
    environment = service["environment"]
    assert environment["POLICYQA_STORE"] == "milvus"
    assert environment["POLICYQA_MILVUS_URI"] == "http://standalone:19530"
    assert environment["POLICYQA_BUILD_ON_START"] == "false"
    host, port = re.fullmatch(r"http://([^:/]+):(\d+)", environment["POLICYQA_MILVUS_URI"]).groups()
    assert host in compose["services"] and port == "19530"
    build = service["build"]
    assert (DEPLOY / build["context"]).resolve() == REPO
    assert build["args"]["POLICYQA_EXTRAS"] == "[milvus]"
    assert 'pip install ".$POLICYQA_EXTRAS"' in (REPO / build["dockerfile"]).read_text(encoding="utf-8")


def test_the_replicas_settings_are_real_and_valid(compose, monkeypatch):
    for name in REPLICAS:
        environment = compose["services"][name]["environment"]
        policyqa = {key: value for key, value in environment.items() if key.startswith("POLICYQA_")}
        for key in policyqa:
            assert key.removeprefix("POLICYQA_").lower() in Settings.model_fields, key
        for key, value in policyqa.items():
            monkeypatch.setenv(key, "token" if value.startswith("${") else value)
        settings = Settings(_env_file=None)
        assert (settings.store, settings.milvus_uri, settings.build_on_start) == (
            "milvus", "http://standalone:19530", False,
        )  # fmt: skip


def test_each_replica_has_a_data_dir_of_its_own_and_starts_after_the_ingest(compose):
    data_volumes = set()
    for name in REPLICAS:
        service = compose["services"][name]
        (volume,) = [v for v in service["volumes"] if v.split(":")[1] == "/data"]
        data_volumes.add(volume.split(":")[0])
        assert service["depends_on"]["ingest"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["standalone"]["condition"] == "service_healthy"
    assert len(data_volumes) == len(REPLICAS)
    assert data_volumes <= set(compose["volumes"])


def test_every_file_it_names_exists(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):  # a bind mount, not a named volume
                assert (DEPLOY / source).exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: {source}"


def test_the_proxy_sends_to_each_replica_on_the_port_the_image_serves(compose):
    (mount,) = compose["services"]["proxy"]["volumes"]
    config = (DEPLOY / mount.split(":")[0]).read_text(encoding="utf-8")
    port = re.search(r"POLICYQA_PORT=(\d+)", (REPO / "Dockerfile").read_text(encoding="utf-8")).group(1)
    upstreams = re.findall(r"^\s*server\s+([\w-]+):(\d+)", config, flags=re.MULTILINE)
    assert sorted(upstreams) == [(name, port) for name in REPLICAS]
    assert "proxy_buffering off" in config  # streamed answers are not held back


def test_only_the_proxy_s_own_forwarded_for_is_believed(compose):
    """A client once chose its own address for rate limits and logs: nginx appended to its X-Forwarded-For, and
    the replicas trusted every sender ("*")."""
    config = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", config)
    assert "$proxy_add_x_forwarded_for" not in config
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    for name in (*REPLICAS, "ingest"):
        assert compose["services"][name]["environment"]["FORWARDED_ALLOW_IPS"] == proxy_address


def test_the_readme_says_it_was_not_run_here():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Several replicas over Milvus", 1)[1].split("\n## ", 1)[0]
    assert "deploy/compose.yaml" in section and "not run" in section


@pytest.mark.parametrize("name", ["policyqa-1", "policyqa-2"])
def test_each_replica_states_its_health_check_which_an_oci_image_would_drop(compose, name):
    """The proxy waits for the replicas' health; buildah or podman images in the OCI format carry no HEALTHCHECK."""
    check = compose["services"][name]["healthcheck"]["test"]
    assert check[0] == "CMD" and "/api/health" in " ".join(check)
