"""Plugin loading through entry points: isolation of failures and the allow-list."""

import json

from conftest import make_installed_plugin, run_seqpipe

GOOD = """
import seqpipe

@seqpipe.hookimpl
def register_models(register):
    register("toy_rnn", "torch.nn:RNN", help="a toy model from a third party")
"""

BROKEN_IMPORT = """
raise ImportError("libfoo.so: cannot open shared object file")
"""

BROKEN_HOOK = """
import seqpipe

@seqpipe.hookimpl
def register_decoders(register):
    raise RuntimeError("decoder table is corrupt")
"""

CLASHING = """
import seqpipe

@seqpipe.hookimpl
def register_features(register):
    register("logmel", "torch.nn:Identity")
"""


def components(stdout: str) -> dict[str, str]:
    data = json.loads(stdout)
    return {f"{c['kind']}:{c['name']}": c["package"] for c in data["components"]}


def test_third_party_plugin_is_listed_with_its_package(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-toy", "seqpipe_toy", GOOD)
    result = run_seqpipe("plugins", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    found = components(result.stdout)
    assert found["model:toy_rnn"] == "seqpipe-toy"
    assert found["features:logmel"] == "seqpipe"
    assert result.stderr == ""


def test_plugin_that_fails_to_import_costs_one_warning_line(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-toy", "seqpipe_toy", GOOD)
    make_installed_plugin(plugin_site, "seqpipe-broken", "seqpipe_broken", BROKEN_IMPORT)
    result = run_seqpipe("plugins", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1
    assert "seqpipe_broken" in warnings[0] and "libfoo.so" in warnings[0]
    # everything else still loads, and the failure is visible in the listing
    assert "model:toy_rnn" in components(result.stdout)
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert "ImportError" in plugins["seqpipe_broken"]["error"]


def test_broken_plugin_does_not_break_other_commands(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-broken", "seqpipe_broken", BROKEN_IMPORT)
    result = run_seqpipe("--help", site=plugin_site)
    assert result.returncode == 0
    assert "transcribe" in result.stdout
    assert "seqpipe_broken" in result.stderr


def test_plugin_whose_hook_raises_is_reported_and_isolated(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-badhook", "seqpipe_badhook", BROKEN_HOOK)
    make_installed_plugin(plugin_site, "seqpipe-toy", "seqpipe_toy", GOOD)
    result = run_seqpipe("plugins", "--json", site=plugin_site)
    assert result.returncode == 0
    assert "register_decoders" in result.stderr and "decoder table is corrupt" in result.stderr
    assert "model:toy_rnn" in components(result.stdout)


def test_plugin_cannot_silently_replace_a_builtin(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-clash", "seqpipe_clash", CLASHING)
    result = run_seqpipe("plugins", "--json", site=plugin_site)
    assert result.returncode == 0
    assert "'logmel' is registered by both" in result.stderr
    assert components(result.stdout)["features:logmel"] == "seqpipe"


def test_allow_list_empty_loads_builtins_only(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-toy", "seqpipe_toy", GOOD)
    make_installed_plugin(plugin_site, "seqpipe-broken", "seqpipe_broken", BROKEN_IMPORT)
    result = run_seqpipe("plugins", "--json", site=plugin_site, env={"SEQPIPE_PLUGINS": ""})
    assert result.returncode == 0
    assert result.stderr == ""  # the broken plugin is not even imported
    found = components(result.stdout)
    assert "model:toy_rnn" not in found and "features:logmel" in found


def test_allow_list_by_entry_point_or_package_name(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-toy", "seqpipe_toy", GOOD)
    make_installed_plugin(plugin_site, "seqpipe-broken", "seqpipe_broken", BROKEN_IMPORT)
    for allowed in ("seqpipe_toy", "seqpipe-toy"):
        result = run_seqpipe(
            "plugins", "--json", site=plugin_site, env={"SEQPIPE_PLUGINS": allowed}
        )
        assert result.returncode == 0
        assert result.stderr == ""
        assert "model:toy_rnn" in components(result.stdout)


def test_plugins_table_output(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-toy", "seqpipe_toy", GOOD)
    result = run_seqpipe("plugins", site=plugin_site, env={"COLUMNS": "200"})
    assert result.returncode == 0
    assert "toy_rnn" in result.stdout and "seqpipe-toy" in result.stdout
