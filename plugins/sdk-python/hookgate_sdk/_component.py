"""The component's entry point (`componentize-py ... componentize hookgate_sdk._component`): the
`transformer` world's export, calling `transform` from the project's `app.py`."""

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

import app
import hookgate_sdk

_LEVELS = {
    "trace": types.Level.TRACE,
    "debug": types.Level.DEBUG,
    "info": types.Level.INFO,
    "warn": types.Level.WARN,
    "error": types.Level.ERROR,
}

hookgate_sdk.log._host = lambda level, message: host.log(_LEVELS[level], message)


class WitWorld(wit_world.WitWorld):
    def transform(self, event: str, config: str) -> list[types.Message]:
        try:
            out = hookgate_sdk.run(app.transform, event, config)
        except hookgate_sdk.Reject as e:
            raise Err(str(e)) from None
        return [types.Message(body=m.body, headers=list(m.headers), target=m.target) for m in out]
