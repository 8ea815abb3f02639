"""tools/benchmark_input.py on real nails images: the Markdown table, its verdict line, and
the CLI's one-line errors."""
from tools import benchmark_input as benchmark


def test_benchmark_prints_a_table(nails_dir, capsys):
    args = benchmark.parse_args(["--data", nails_dir, "--size", "64", "64", "--batch", "2",
                                 "--batches", "1", "--warmup", "0", "--num-parallel", "2"])
    assert benchmark.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("52 images from") and lines[1].startswith("| pipeline |")
    rows = [line.split(" | ") for line in lines[3:-1]]
    assert [r[0] for r in rows] == ["| bare decode + resize (cv2, 1 thread)",
                                    "| tf.data, no augmentation", "| tf.data + augmentation",
                                    "| train step (mobilenetv2 Unet)"]
    assert all(float(r[3]) > 0 for r in rows)
    assert lines[-1].startswith(("the pipeline keeps up", "the pipeline STARVES"))
    table = benchmark.format_table([{"pipeline": "a", "images/s": 1.0},
                                    {"pipeline": "train step", "images/s": 2.5, "ms": 3}])
    assert table.splitlines()[-1] == "| train step | 2.5 | 3 |"
    assert benchmark.run(benchmark.main, benchmark.parse_args,
                         ["--data", nails_dir, "--batch", "0"]) == 2
    assert "--batch must be at least 1" in capsys.readouterr().err
