"""Run by CKAN's own interpreter (`.civicflow/ckan/venv/bin/python`), never imported by CivicFlow.

Creates (or promotes) the sysadmin and issues one API token, loading CKAN once instead of once per
`ckan user add` / `ckan sysadmin add` / `ckan user token add`. Reads a JSON request on stdin
({"ini", "user", "email", "password", "token_name"}) and prints {"token": ...} as the last stdout line.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def bootstrap(request: dict[str, Any]) -> dict[str, str]:
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    app = make_app(load_config(request["ini"]))
    import ckan.logic as logic
    import ckan.model as model

    site_user = logic.get_action("get_site_user")({"ignore_auth": True}, {})
    context = {"ignore_auth": True, "user": site_user["name"]}
    # user_create dictizes against the current user, which needs a request context.
    with app._wsgi_app.test_request_context():
        user = model.User.by_name(request["user"])
        if user is None:
            logic.get_action("user_create")(dict(context), {
                "name": request["user"], "email": request["email"], "password": request["password"],
                "fullname": "CivicFlow publisher"})
            user = model.User.by_name(request["user"])
        user.sysadmin = True
        model.Session.add(user)
        model.repo.commit()
        token = logic.get_action("api_token_create")(
            {"ignore_auth": True}, {"user": request["user"], "name": request["token_name"]})
    return {"token": token["token"]}


if __name__ == "__main__":
    result = bootstrap(json.load(sys.stdin))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
