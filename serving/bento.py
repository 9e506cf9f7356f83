"""Build the Bento: every @champion copied into the BentoML model store, then ``bentofile.yaml``.

A Bento is a deployable artefact, so it carries its models instead of reading the registry:
``WW_SERVING_MODEL_SOURCE=bento`` (set by the bentofile) makes the service load
``wattwise-<name>`` from the Bento's model store. The Feast online store is data and stays
outside (``WATTWISE_PATHS__DATA_DIR``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.core import bento_model_name
from serving.server import REPO_ROOT
from wattwise.config import read_yaml
from wattwise.errors import WattwiseError

if TYPE_CHECKING:
    from serving.config import ServingConfig
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


def import_champions(settings: Settings, cfg: ServingConfig) -> list[str]:
    """Copy each configured model's aliased version into the BentoML store; return the tags."""
    import bentoml

    from serving.config import served_kinds
    from training.kinds import registry
    from training.registry import alias_version
    from training.tracking import setup

    client = setup(settings)
    tags = []
    for kind, entry in served_kinds(cfg, registry(settings)).items():
        version = alias_version(client, entry.registered_name, entry.alias)
        if version is None:
            if entry.required:
                raise WattwiseError(
                    f"{kind}: registered model {entry.registered_name!r} has no @{entry.alias}"
                )
            log.info("%s: no @%s, left out of the Bento", kind, entry.alias)
            continue
        m = bentoml.mlflow.import_model(
            bento_model_name(entry.registered_name),
            f"models:/{entry.registered_name}/{version}",
            labels={"registered_name": entry.registered_name, "version": version, "kind": kind},
        )
        tags.append(str(m.tag))
    return tags


def build_bento(settings: Settings, cfg: ServingConfig) -> tuple[str, list[str]]:
    """Import the champions and build ``bentofile.yaml`` with them; returns (bento tag, models)."""
    import contextlib
    import tempfile

    import bentoml
    import yaml

    tags = import_champions(settings, cfg)
    opts: dict[str, Any] = read_yaml(REPO_ROOT / "bentofile.yaml")
    opts["models"] = tags  # the imported versions, optional kinds included when present
    # bentoml reads the bentofile's "file: ./docs/serving.md" from the current directory and
    # refuses a file outside it: build from the project, wherever the command was run
    with (
        tempfile.TemporaryDirectory(prefix="wattwise-bento-") as tmp,
        contextlib.chdir(REPO_ROOT),
    ):
        bentofile = Path(tmp) / "bentofile.yaml"
        bentofile.write_text(yaml.safe_dump(opts, sort_keys=False))
        bento = bentoml.bentos.build_bentofile(str(bentofile), build_ctx=str(REPO_ROOT))
    return str(bento.tag), tags
