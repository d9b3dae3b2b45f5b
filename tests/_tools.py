"""A scripted fake model for tool-calling tests."""

import json

from genstack.agents.calling import CLOSE, OPEN
from genstack.models.fake import FakeChatModel


def scripted(*turns):
    """A fake that plays ``turns`` in order; a turn that is a dict (or a list: parallel calls) is a call:
    the free pass writes the tag, and the call pass (its prompt ends with <tool_call>) gets the JSON."""
    return FakeChatModel(responder=script(*turns))


def script(*turns):
    """The responder of :func:`scripted`."""
    queue = list(turns)

    def responder(request):
        prompt = request.prompt or ""
        if prompt.endswith(OPEN):
            call = queue.pop(0)
            return json.dumps(call)
        turn = queue[0]
        if isinstance(turn, (dict, list)):
            return OPEN + json.dumps(turn) + CLOSE
        queue.pop(0)
        return turn

    return responder
