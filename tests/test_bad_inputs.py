"""Bad input of every kind at the simulators' configs, the SAC scripts, benchmarks/ and tools/: a
ValueError naming the field and its interval (configs), or exit 2 with a message naming the flag
and no traceback (command lines), before any work starts."""
import importlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import comp_env  # noqa: E402
import oran_env  # noqa: E402

# (make_config, field, bad value, text the message must contain)
BAD_CONFIGS = [
    (oran_env.make_config, "urllc_processing_ms", -1.0,
     "urllc_processing_ms: expected numbers in [0, 100000], got -1.0"),
    (oran_env.make_config, "urllc_delay_budget_ms", 0.0,
     "urllc_delay_budget_ms: expected numbers in (0, 100000], got 0.0"),
    (oran_env.make_config, "delay_report_cap_ms", -5.0, "delay_report_cap_ms"),
    (oran_env.make_config, "step_ms", -100.0, "step_ms"),
    (oran_env.make_config, "min_sinr_db", 1e300, "min_sinr_db: expected numbers in [-100, 100]"),
    (oran_env.make_config, "tx_power_dbm", 1e300, "tx_power_dbm"),
    (oran_env.make_config, "noise_psd_dbm_hz", -1e300, "noise_psd_dbm_hz"),
    (oran_env.make_config, "noise_figure_db", 400.0, "noise_figure_db"),
    (oran_env.make_config, "load", 1e308, "load: expected numbers in [0, 100]"),
    (oran_env.make_config, "slice_load", (1.0, 1e308, 1.0), "slice_load"),
    (oran_env.make_config, "embb_rate_mbps", 1e300, "embb_rate_mbps"),
    (oran_env.make_config, "num_ues", 10**9, "num_ues: expected numbers in [1, 5000]"),
    (oran_env.make_config, "num_rbs", 10**7, "num_rbs"),
    (oran_env.make_config, "num_dus", 100, "num_dus"),
    (oran_env.make_config, "ue_slots", 10**9, "ue_slots"),
    (oran_env.make_config, "episode_length", 10**12, "episode_length"),
    (oran_env.make_config, "buffer_kbit", (1e300, 1.0, 1.0), "buffer_kbit"),
    (oran_env.make_config, "reward_alpha", (1e300, 1.0, 1.0), "reward_alpha"),
    (oran_env.make_config, "heading_changes_deg", (0.0, math.nan), "heading_changes_deg"),
    (oran_env.make_config, "speed_mps", (-1.0, 2.0), "speed_mps"),
    (oran_env.make_config, "shadowing_db", math.inf, "shadowing_db"),
    (oran_env.make_config, "du_ue_weights", (1.0, 1e300), "du_ue_weights"),
    (comp_env.make_config, "tx_power_dbm", 1e300, "tx_power_dbm: expected numbers in [-100, 100]"),
    (comp_env.make_config, "noise_mw", 1e-300, "noise_mw"),
    (comp_env.make_config, "noise_mw", -1.0, "noise_mw"),
    (comp_env.make_config, "snr_threshold", -1.0, "snr_threshold"),
    (comp_env.make_config, "ue_height_m", 1e6, "ue_height_m"),
    (comp_env.make_config, "num_slow_ues", 10**9, "num_slow_ues: expected numbers in [0, 1000]"),
    (comp_env.make_config, "episode_length", 10**12, "episode_length"),
    (comp_env.make_config, "pause_steps", -1, "pause_steps"),
    (comp_env.make_config, "bandwidth_hz", math.nan, "bandwidth_hz"),
    (comp_env.make_config, "bs_positions", ((1.0, 1.0),) * 101, "bs_positions"),
    (comp_env.make_config, "fast_speed", (5, 10**9), "fast_speed"),
]


@pytest.mark.parametrize("make_config, field, value, message", BAD_CONFIGS,
                         ids=[f"{c[0].__module__}-{c[1]}" for c in BAD_CONFIGS])
def test_bad_config_values_name_the_field_and_its_interval(make_config, field, value, message):
    with pytest.raises(ValueError) as error:
        make_config("small", **{field: value})
    assert message in str(error.value)


def test_configs_at_the_ends_of_their_intervals_are_valid():
    """The bounds are inclusive where the table says so (no off-by-one at the ends)."""
    oran_env.make_config("small", urllc_processing_ms=0.0, load=100.0, min_sinr_db=-100.0,
                         num_ues=5000, num_rbs=500, tx_power_dbm=100.0)
    comp_env.make_config("small", tx_power_dbm=-100.0, noise_mw=1e-30, num_slow_ues=1000,
                         ue_height_m=100.0)


SAC_TINY = ("--scenario", "small", "--total-timesteps", "300", "--learning-starts", "150",
            "--torch-threads", "1")

# (command after the interpreter, text the message must contain)
BAD_COMMANDS = {
    "sac hidden sizes": (("sac_marl_baseline.py", "--hidden-sizes", "10000000", "10000000"),
                         "--hidden-sizes must be a finite number in [1, 16384]"),
    "sac networks memory": (("sac_marl_baseline.py", *SAC_TINY, "--hidden-sizes", *["16384"] * 16),
                            "--hidden-sizes 16384"),
    "sac target entropy": (("sac_marl_baseline.py", "--target-entropy", "1e308"),
                           "--target-entropy must be a finite number in [-100, 100]"),
    "sac alpha init": (("sac_marl_l2.py", "--alpha-init", "1e300"), "--alpha-init"),
    "sac empty scenario": (("sac_marl_baseline.py", "--scenario", ""), "--scenario"),
    "sac num envs over the warm-up": (("tasam_marl_sac.py", *SAC_TINY, "--num-envs", "1000"),
                                      "--num-envs (1000) must fit both the warm-up"),
    "sac num envs over the budget": (("sac_marl_baseline.py", "--scenario", "small",
                                      "--total-timesteps", "300", "--learning-starts", "0",
                                      "--num-envs", "1000"), "--num-envs (1000)"),
    "sac min sinr overflow": (("sac_marl_baseline.py", *SAC_TINY, "--min-sinr-db", "1e300"),
                              "min_sinr_db"),
    "sac load overflow": (("sac_marl_baseline.py", *SAC_TINY, "--load", "1e308"), "load"),
    "sac negative processing time": (("sac_marl_baseline.py", *SAC_TINY,
                                      "--urllc-processing-ms", "-1"), "urllc_processing_ms"),
    "sac comp noise": (("sac_marl_baseline.py", "--env-id", "comp", "--noise-mw", "1e-300"),
                       "noise_mw"),
    "tasam rho": (("tasam_marl_sac.py", "--rho-init", "1e300"), "--rho-init"),
    "l2 coefficient": (("sac_marl_l2.py", "--l2-coef", "1e300"), "--l2-coef"),
    "bench_env blocks": (("benchmarks/bench_env.py", "--blocks", "0"), "--blocks"),
    "bench_env scenario": (("benchmarks/bench_env.py", "--scenarios", "nowhere"), "--scenarios"),
    "bench_env revision": (("benchmarks/bench_env.py", "--baseline", "no-such-revision"),
                           "--baseline"),
    "bench_comp_env num envs": (("benchmarks/bench_comp_env.py", "--num-envs", "0"),
                                "--num-envs"),
    "bench_comp_env seconds": (("benchmarks/bench_comp_env.py", "--seconds", "inf"), "--seconds"),
    "bench_comp_env scenario": (("benchmarks/bench_comp_env.py", "--scenarios", "nowhere"),
                                "--scenarios"),
    "bench_train updates": (("benchmarks/bench_train.py", "--updates", "0"), "--updates"),
    "bench_train variant": (("benchmarks/bench_train.py", "--variants", "nope"), "--variants"),
    "bench_train out under a file": (("benchmarks/bench_train.py", "--out", "{file}/x.json"),
                                     "--out"),
    "render policy": (("tools/render_episode.py", "--out", "{tmp}/x.gif", "--policy", "nope"),
                      "--policy"),
    "render model missing": (("tools/render_episode.py", "--out", "{tmp}/x.gif", "--policy",
                              "{tmp}/missing.pt"), "--policy"),
    "render model not a model": (("tools/render_episode.py", "--out", "{tmp}/x.gif", "--policy",
                                  "{file}"), "--policy"),
    "render scenario": (("tools/render_episode.py", "--out", "{tmp}/x.gif", "--scenario", "x"),
                        "--scenario"),
    "render every": (("tools/render_episode.py", "--out", "{tmp}/x.gif", "--every", "0"),
                     "--every"),
    "render out under a file": (("tools/render_episode.py", "--out", "{file}/x.gif"), "--out"),
    "picture heuristic": (("tools/allocation_picture.py", "--model", "{file}", "--out",
                           "{tmp}/x.png", "--heuristic", "nope"), "--heuristic"),
    "picture model missing": (("tools/allocation_picture.py", "--model", "{tmp}/missing.pt",
                               "--out", "{tmp}/x.png"), "--model"),
    "picture out under a file": (("tools/allocation_picture.py", "--model", "{file}", "--out",
                                  "{file}/x.png"), "--out"),
}


# the SAC scripts' flags rejected while parsing: checked in this process (the subprocess cases above
# show that such an error leaves no traceback and writes nothing)
PARSED = ("sac hidden sizes", "sac target entropy", "sac alpha init",
          "sac num envs over the warm-up",
          "sac num envs over the budget", "sac min sinr overflow", "sac load overflow",
          "sac negative processing time", "sac comp noise", "tasam rho", "l2 coefficient")


@pytest.mark.parametrize("name", PARSED)
def test_bad_sac_flags_exit_2_naming_the_flag_while_parsing(name, monkeypatch, capsys):
    (script, *flags), message = BAD_COMMANDS[name]
    module = importlib.import_module(script[: -len(".py")])
    monkeypatch.setattr(sys, "argv", [script, *flags])
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args()
    out = capsys.readouterr()
    assert exit_info.value.code == 2
    assert message in " ".join((out.out + out.err).replace("│", " ").split())


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in BAD_COMMANDS if name not in PARSED])
def test_bad_command_lines_exit_2_naming_the_flag_without_traceback(name, tmp_path):
    command, message = BAD_COMMANDS[name]
    a_file = tmp_path / "a_file.pt"
    a_file.write_text("not a model")
    command = [arg.format(tmp=tmp_path, file=a_file) for arg in command]
    result = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:]], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    output = " ".join((result.stdout + result.stderr).replace("│", " ").split())
    assert (result.returncode, "Traceback" in output) == (2, False), output
    assert message in output, output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.pt"]  # nothing written
