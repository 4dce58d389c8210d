"""What the generated inputs are and where they are cached. Standard library only: the parent
process imports this, and must stay small (see `runner`)."""

from __future__ import annotations

from pathlib import Path

# Bump when the content generated for given parameters changes: cached files are then rebuilt.
GENERATOR_VERSION = 1
SEED = 42
SHEET_NAME = "CUSTO DE MATERIAL E SERVIÇOS"
HEADER = (
    "DEPÓSITO",
    "PRODUTO/SERVIÇO",
    "MATERIAL",
    "FAMÍLIA",
    "NOME FORNEC.",
    "QUANTIDADE",
    "U.M.",
    "DATA REQUISITADA",
    "SOLICITAÇÃO",
    "DATA SOLICITADO",
    "DATA DE COMPRA",
)
CODE_COLUMNS = ("DEPÓSITO", "PRODUTO/SERVIÇO", "SOLICITAÇÃO")  # text: keep leading zeros
DATE_COLUMNS = ("DATA REQUISITADA", "DATA SOLICITADO", "DATA DE COMPRA")
SUFFIXES = {"csv": ".csv", "xlsx": ".xlsx"}


def cached_path(data_dir: Path, kind: str, rows: int, seed: int = SEED) -> Path:
    """Where the `kind` ("csv" or "xlsx") input of `rows` rows is cached."""
    return data_dir / f"requisitions-{rows}-seed{seed}-v{GENERATOR_VERSION}{SUFFIXES[kind]}"
