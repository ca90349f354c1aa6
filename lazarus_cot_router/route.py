"""``lazarus-cot-router route "QUERY"``: route one query, print its line and action."""

from __future__ import annotations

import argparse
import json
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus-cot-router route", description=__doc__)
    parser.add_argument("query", help="the user query to route ('-': read it from standard input)")
    parser.add_argument("--rewriter", default=None, help="trained-cot (default) or few-shot, or any registered rewriter")
    parser.add_argument("--model", default=None, help="model SPEC: embedded (default), a local mlx-lm dir, or a hub id")
    parser.add_argument("--adapter", default=None, help="adapter directory from `train` (trained-cot only)")
    parser.add_argument("--config", default=None, help="Lazarus-style YAML with a virtual_experts section")
    parser.add_argument("--experts", default=None, help="comma-separated available experts (default: all)")
    parser.add_argument("--json", action="store_true", help="print only the action as JSON")
    return parser


def make_rewriter(args):
    from .config import ConfigError, load_rewriter
    from .plugins import get_rewriter

    if args.config:
        if args.rewriter or args.model or args.adapter:
            raise ConfigError("--config cannot be combined with --rewriter/--model/--adapter")
        return load_rewriter(args.config)
    name = args.rewriter or "trained-cot"
    options = {}
    if args.model:
        options["model"] = args.model
    if args.adapter:
        if name != "trained-cot":
            raise ConfigError("--adapter applies to the trained-cot rewriter only")
        options["adapter"] = args.adapter
    return get_rewriter(name, **options)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import ConfigError
    from .models import ModelLoadError

    try:
        rewriter = make_rewriter(args)
    except (ConfigError, ModelLoadError, ValueError) as exc:
        print(f"lazarus-cot-router route: {exc}", file=sys.stderr)
        return 2
    available = args.experts.split(",") if args.experts else None
    query = sys.stdin.read() if args.query == "-" else args.query
    action = rewriter.rewrite(query, available)
    if not args.json:
        print(action.reasoning)
    print(action.model_dump_json() if hasattr(action, "model_dump_json") else json.dumps(action.model_dump()))
    return 0
