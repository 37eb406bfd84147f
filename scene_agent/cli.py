"""The command line (DESIGN section 7): parses flags, loads settings, runs a command.

Exit codes: 0 success, 1 unexpected failure, 2 bad configuration or input.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scene_agent import __version__
from scene_agent.config import Settings, dump_yaml, load_settings, masked_dump
from scene_agent.errors import ConfigError, SceneAgentError, SourceError

# Each command imports what it needs when it runs: the health check (every 30 s in the
# container) must not load OpenCV, numpy and the agent.

log = logging.getLogger("scene_agent")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="YAML settings file (default: $SCENE_AGENT_CONFIG)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])


def _add_detector_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detector overrides (highest precedence)")
    group.add_argument("--threshold", type=float, help="MSE score at which a frame differs")
    group.add_argument("--min-frames", type=int, help="consecutive differing frames to start")
    group.add_argument("--event-gap", type=float, help="seconds without change that end one")
    group.add_argument("--mask", type=Path, help="mask image: black pixels are ignored")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scene-agent",
        description="Tells you when a camera's scene no longer looks like the reference you chose.",
    )
    parser.add_argument("--version", action="version", version=f"scene-agent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    rp = commands.add_parser(
        "replay",
        help="run the detector over a video file or image sequence",
        description="Run the live agent's detector and episode logic over a recorded source.",
    )
    rp.add_argument(
        "source", help="video file, image pattern (frames/in%%06d.jpg), or 'demo' for the demo"
    )
    rp.add_argument(
        "--baseline",
        default="0",
        help="frame index of the baseline (default 0) or an image file",
    )
    rp.add_argument(
        "--baseline-frames",
        type=int,
        help="learn the reference from N frames from --baseline (default: detector.learn_s "
        "seconds of frames; 1 = that frame alone, its normal variation learned from the "
        "frames after it)",
    )
    rp.add_argument("--fps", type=float, help="video rate when the source does not say")
    rp.add_argument("--json", dest="json_out", help="write the result as JSON here ('-': stdout)")
    rp.add_argument("--scores", action="store_true", help="add per-frame scores to the JSON")
    rp.add_argument("--out", type=Path, help="write labelled first and peak frames here")
    rp.add_argument("--plot", type=Path, help="draw the score over time into this PNG")
    _add_common(rp)
    _add_detector_flags(rp)

    cc = commands.add_parser("check-config", help="validate and print the effective settings")
    _add_common(cc)

    run = commands.add_parser(
        "run", help="run the agent (the default command)", description="Run the live agent."
    )
    _add_common(run)
    _add_detector_flags(run)

    hc = commands.add_parser(
        "healthcheck", help="exit 0 while the agent loop is alive (for Docker)"
    )
    _add_common(hc)

    watch = commands.add_parser(
        "watch", help="print what an agent publishes (events, state, replies)"
    )
    watch.add_argument("--count", type=int, help="exit after this many events")
    watch.add_argument("--seconds", type=float, help="exit after this many seconds")
    _add_common(watch)

    remove = commands.add_parser(
        "ha-remove",
        help="remove this camera's device from Home Assistant (empty retained discovery configs)",
    )
    _add_common(remove)
    return parser


def _detector_overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {
        "threshold": "threshold",
        "min_frames": "min_frames",
        "event_gap": "event_gap_s",
        "mask": "mask",
    }
    detector = {
        key: getattr(args, flag)
        for flag, key in names.items()
        if getattr(args, flag, None) is not None
    }
    return {"detector": detector} if detector else {}


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    data = masked_dump(settings)
    from scene_agent.camera import redact_url  # noqa: PLC0415

    data["camera"]["source"] = redact_url(data["camera"]["source"])
    sys.stdout.write(dump_yaml(data))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import cv2  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from scene_agent.camera import parse_source  # noqa: PLC0415
    from scene_agent.imagefiles import load_mask, read_image  # noqa: PLC0415
    from scene_agent.plot import plot_scores  # noqa: PLC0415
    from scene_agent.replay import replay  # noqa: PLC0415

    if args.baseline_frames is not None and args.baseline_frames < 1:
        raise ConfigError("--baseline-frames must be at least 1")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise ConfigError("--fps must be above 0 and at most 1000")
    source = parse_source(args.source)
    baseline: int | Any
    if args.baseline.isdigit():
        baseline = int(args.baseline)
    else:
        baseline = read_image(Path(args.baseline), "baseline image")
    mask = load_mask(settings.detector.mask)

    bar = tqdm(
        total=None, unit="frame", disable=not sys.stderr.isatty(), file=sys.stderr, leave=False
    )

    def progress(done: int, total: int | None) -> None:
        if bar.total is None and total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        result = replay(
            source,
            settings.detector,
            baseline=baseline,
            baseline_frames=args.baseline_frames,
            fps=args.fps,
            mask=mask,
            out_dir=args.out,
            jpeg_quality=settings.storage.jpeg_quality,
            keep_scores=args.scores or args.plot is not None,
            progress=progress,
        )
    finally:
        bar.close()
    if args.json_out:
        text = json.dumps(result.as_json(args.scores), indent=2) + "\n"
        if args.json_out == "-":
            sys.stdout.write(text)
        else:
            Path(args.json_out).write_text(text, encoding="utf-8")
    if args.plot is not None:
        picture = plot_scores(
            result.scores, result.threshold, result.events, result.tamper, result.fps
        )
        if not cv2.imwrite(str(args.plot), picture):
            raise ConfigError(f"--plot: cannot write a PNG to {args.plot}")
    for event in result.events:
        end = "open" if event["end_frame"] is None else f"{event['end_frame']}"
        print(
            f"episode: frames {event['start_frame']}-{end}, peak score "
            f"{event['peak_score']:.1f} at frame {event['peak_frame']}",
            file=sys.stderr,
        )
    print(result.summary(), file=sys.stderr)
    return EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from scene_agent.app import App  # noqa: PLC0415 - keeps the other commands light

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s received", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    App(settings).run(stop)
    return EXIT_OK


def cmd_healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    from scene_agent.heartbeat import read_heartbeat  # noqa: PLC0415

    problem = read_heartbeat(settings.storage.data_dir)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    print("healthy")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    from scene_agent.clients import watch  # noqa: PLC0415

    return watch(settings, count=args.count, seconds=args.seconds)


def cmd_ha_remove(args: argparse.Namespace, settings: Settings) -> int:
    from scene_agent.clients import ha_remove  # noqa: PLC0415

    return ha_remove(settings)


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "replay": cmd_replay,
    "check-config": cmd_check_config,
    "run": cmd_run,
    "healthcheck": cmd_healthcheck,
    "watch": cmd_watch,
    "ha-remove": cmd_ha_remove,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `scene-agent` / `python -m scene_agent` alone: the agent
        args = parser.parse_args(["run", *(argv or sys.argv[1:])])
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(args.config, overrides=_detector_overrides(args))
        return COMMANDS[args.command](args, settings)
    except (ConfigError, SourceError) as exc:
        print(f"scene-agent: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SceneAgentError as exc:
        print(f"scene-agent: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
