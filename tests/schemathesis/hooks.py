"""Hooks for the schemathesis run in tests/schemathesis.rs (SCHEMATHESIS_HOOKS=hooks).

One works around a bug of schemathesis 4.32.5 itself, not of spectask: a link it
infers through a wildcard (`$response.body#/items/*/spec_task_id` of `GET /events`)
may pick a JSON null out of the list (an event about a project has no spec task), and
the stateful phase then sends the text `None` as an integer path parameter, calls
the request schema-valid, and reports its 400 as "schema-valid request rejected".
(It skips a null link value itself, but not one picked out of several.) Such a
parameter is sent as 0 instead, an id nothing has, which is what the link meant:
no spec task. The same null can land in a query parameter (a link from a list whose
entries have `session_id: null`, like `GET /notifications`): such a parameter is left
out, which is what a null meant.
"""

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    for name, value in list((case.path_parameters or {}).items()):
        if value is None:
            case.path_parameters[name] = 0
    for name, value in list((case.query or {}).items()):
        if value is None:
            del case.query[name]
