"""Renders the functions' IAM policy templates the way Terraform's `templatefile` does.

Each function keeps its policy in one `policy.json.tftpl` next to its module;
Terraform renders it with `templatefile(path, vars)`. This module renders the
same file with the same variables, so a test can read the policy a function
really gets, and can hand it to another IAM engine (moto's) as it is.

Only the template subset the policies use is supported, and anything else is
an error rather than a silent difference: `${name}` interpolations of a
variable or loop value, `%{ if name }…%{ else }…%{ endif }` on a boolean, and
`%{ for item in name }…%{ endfor }` over a list.

    render("infra/terraform/modules/api_function/policy.json.tftpl", {...}) -> dict
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_terraform_conventions import TERRAFORM_ROOT

TOKEN = re.compile(r"%\{\s*(?P<directive>[^}]*?)\s*\}|\$\{\s*(?P<interpolation>[^}]*?)\s*\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(ValueError):
    pass


def policy_template(module: str) -> Path:
    return TERRAFORM_ROOT / "modules" / module / "policy.json.tftpl"


def render_text(text: str, variables: dict) -> str:
    tokens = []
    position = 0
    for match in TOKEN.finditer(text):
        tokens.append(("text", text[position : match.start()]))
        if match["directive"] is not None:
            tokens.append(("directive", match["directive"]))
        else:
            tokens.append(("value", match["interpolation"]))
        position = match.end()
    tokens.append(("text", text[position:]))
    output, rest = _render(tokens, 0, dict(variables), stop=())
    if rest != len(tokens):
        raise TemplateError(f"unexpected %{{ {tokens[rest][1]} }}")
    return output


def render(path: Path | str, variables: dict) -> dict:
    """The policy document a template gives for these variables, parsed from JSON."""
    path = Path(path)
    text = render_text(path.read_text(), variables)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateError(f"{path.name} does not render to JSON ({error}):\n{text}") from error


def _lookup(name: str, scope: dict):
    if not NAME.match(name):
        raise TemplateError(f"unsupported expression ${{{name}}}")
    if name not in scope:
        raise TemplateError(f"variable {name!r} is not set")
    return scope[name]


def _render(tokens, index, scope, stop):
    """Renders from tokens[index] until a directive in `stop`; returns (text, index of that directive)."""
    output = []
    while index < len(tokens):
        kind, value = tokens[index]
        if kind == "text":
            output.append(value)
            index += 1
        elif kind == "value":
            item = _lookup(value, scope)
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                raise TemplateError(f"${{{value}}} is not a string or number")
            output.append(str(item))
            index += 1
        else:
            words = value.split()
            keyword = words[0] if words else ""
            if keyword in stop:
                return "".join(output), index
            if keyword == "if" and len(words) == 2:
                condition = _lookup(words[1], scope)
                if not isinstance(condition, bool):
                    raise TemplateError(f"%{{ if {words[1]} }} needs a boolean")
                then_text, index = _render(tokens, index + 1, scope, stop=("else", "endif"))
                else_text = ""
                if tokens[index][1].split()[0] == "else":
                    else_text, index = _render(tokens, index + 1, scope, stop=("endif",))
                output.append(then_text if condition else else_text)
                index += 1
            elif keyword == "for" and len(words) == 4 and words[2] == "in":
                items = _lookup(words[3], scope)
                if not isinstance(items, list):
                    raise TemplateError(f"%{{ for … in {words[3]} }} needs a list")
                end = None
                for item in items:
                    body, end = _render(tokens, index + 1, {**scope, words[1]: item}, stop=("endfor",))
                    output.append(body)
                if end is None:  # render once, discarded, to find the matching endfor
                    _, end = _render(tokens, index + 1, {**scope, words[1]: ""}, stop=("endfor",))
                index = end + 1
            else:
                raise TemplateError(f"unsupported directive %{{ {value} }}")
    if stop:
        raise TemplateError(f"missing %{{ {stop[-1]} }}")
    return "".join(output), index
