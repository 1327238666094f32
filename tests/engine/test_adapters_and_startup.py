import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def run_python(code: str, tmp_path: Path, extra_path: str = "") -> subprocess.CompletedProcess:
    env_path = f"{extra_path}:{TESTS}" if extra_path else str(TESTS)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=600)


def test_third_party_adapter_through_entry_point(tmp_path):
    """A package that registers an olmo2 adapter gives olmo2 a fast path equal to the reference."""
    site = tmp_path / "site"
    (site / "olmo2_swapkl").mkdir(parents=True)
    (site / "olmo2_swapkl" / "__init__.py").write_text(
        "from pytest_swapkl.engine.adapters import Adapter\n"
        "ADAPTER = Adapter(model_types=('olmo2',), layers='model.layers', final=('model.norm',))\n"
    )
    dist = site / "olmo2_swapkl-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: olmo2-swapkl\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest_swapkl.adapters]\nolmo2 = olmo2_swapkl:ADAPTER\n")
    result = run_python(
        """
        from tiny_models import tiny_model, random_ids
        from pytest_swapkl import engine, probes as P
        from pytest_swapkl.engine.adapters import registered_model_types
        assert "olmo2" in registered_model_types()
        model = tiny_model("olmo2")
        probes = P.audit_probes(P.parse_pairs("all", 4), 4)
        fast = engine.measure(model, random_ids(3, 16), probes)
        reference = engine.measure(model, random_ids(3, 16), probes, path="reference")
        assert fast.path == "fast"
        print(max(abs(fast.kl(p) - reference.kl(p)) for p in probes))
        """,
        tmp_path,
        extra_path=str(site),
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip()) <= 1e-6


def test_pytest_start_up_imports_no_torch(tmp_path):
    (tmp_path / "test_nothing.py").write_text("def test_ok():\n    pass\n")
    result = run_python(
        """
        import sys, pytest
        code = pytest.main(["-q", "-p", "no:cacheprovider", "test_nothing.py"])
        loaded = [name for name in sys.modules if name == "torch" or name.startswith("torch.")]
        print("plugin loaded:", "pytest_swapkl.plugin.hooks" in sys.modules, "torch modules:", len(loaded))
        sys.exit(code)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugin loaded: True torch modules: 0" in result.stdout


def test_families_command_lists_adapters(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pytest_swapkl", "families"], capture_output=True, text=True)
    assert result.returncode == 0
    for model_type in ("gpt2", "gpt_neox", "llama", "gemma3_text", "opt"):
        assert f"  {model_type}\n" in result.stdout


def test_the_families_list_is_the_adapter_registry():
    """`swapkl families` prints a static list (no torch); it must name exactly the built-in adapters."""
    from pytest_swapkl.engine.adapters import _REGISTRY, BUILT_IN
    from pytest_swapkl.engine.families import BUILT_IN_MODEL_TYPES

    assert sorted(t for t, (_, source) in _REGISTRY.items() if source == BUILT_IN) == list(BUILT_IN_MODEL_TYPES)


def test_families_and_help_import_no_heavy_library_and_list_entry_points_by_name(tmp_path):
    site = tmp_path / "site"
    dist = site / "olmo2_swapkl-0.1.dist-info"
    dist.mkdir(parents=True)  # the package itself is missing: listing must not load it
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: olmo2-swapkl\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest_swapkl.adapters]\nolmo2 = olmo2_swapkl:ADAPTER\n")
    result = run_python(
        """
        import contextlib, io, sys
        from pytest_swapkl.commands.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["families"]) == 0
            for argv in (["--help"], ["audit", "--help"], ["report", "--help"], ["trajectory", "--help"]):
                try:
                    main(argv)
                except SystemExit:
                    pass
        heavy = sorted(m for m in ("torch", "transformers", "numpy", "matplotlib", "datasets") if m in sys.modules)
        print(out.getvalue())
        print("heavy:", heavy)
        """,
        tmp_path,
        extra_path=str(site),
    )
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout
    assert "  olmo2 (package olmo2-swapkl)" in result.stdout and "  llama\n" in result.stdout


def test_a_second_adapter_for_one_family_is_an_error_naming_both_sources():
    import pytest

    from pytest_swapkl.engine.adapters import Adapter, DuplicateAdapterError, register

    rival = Adapter(model_types=("llama",), layers="model.layers", final=("model.norm",))
    with pytest.raises(DuplicateAdapterError, match="from pytest-swapkl and from package rival-adapters"):
        register(rival, "package rival-adapters")


def test_a_broken_adapter_package_costs_a_notice_not_the_engine(tmp_path):
    site = tmp_path / "site"
    (site / "broken_swapkl").mkdir(parents=True)
    (site / "broken_swapkl" / "__init__.py").write_text("raise RuntimeError('this package is broken')\n")
    dist = site / "broken_swapkl-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-swapkl\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest_swapkl.adapters]\nbroken = broken_swapkl:ADAPTER\n")
    result = run_python(
        """
        from pytest_swapkl import engine, probes as P  # importing the engine never loads entry points
        from pytest_swapkl.engine.adapters import registered_model_types
        print("llama" in registered_model_types())
        """,
        tmp_path,
        extra_path=str(site),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert "package broken-swapkl failed to load (RuntimeError: this package is broken)" in result.stderr
