"""Build steps that wait for other objects: one mechanism for all of them.

A rule may depend on objects that Nengo builds after it (the downstream
connection whose weights `.BackProp` reads, the rule above a chained one), or
on the whole model (the in-place encoder update has to know everything that
drives an ensemble's neurons). Nengo has no hook for either, only
``Model.build_callback``, called after each object is built. This module keeps
all the waiting of one model in one `BuildState`, installed as that callback
while anything waits and removed once nothing does, so that a built model holds
no nengo_fa callback (it pickles).

- `when_built` calls back once given objects are built;
- `when_model_built` calls back once every object of the model's toplevel
  network is built (the end of the build);
- `publish` and `when_published` pass a value (e.g. the feedback signal a rule
  reads) from the build step that makes it to those that need it, whichever
  runs first.

Internal.
"""

import weakref

_STATES = weakref.WeakKeyDictionary()


class BuildState:
    """What nengo_fa waits for while one model is built.

    Installed as ``model.build_callback`` (chaining the callback that was
    there) while something waits; it puts the previous callback back once
    nothing does.
    """

    def __init__(self, model):
        self.model = weakref.ref(model)
        self.previous = None
        self.installed = False
        self.waiting = []  # [set of pending ids, callback]
        self.at_end = None  # callbacks for the end of the build, once asked
        self.at_end_callback = None  # the waiting callback that calls them
        self.published = {}  # key -> ("value", value) or ("waiting", [callbacks])

    def install(self):
        model = self.model()
        if not self.installed:
            self.previous = model.build_callback
            model.build_callback = self
            self.installed = True

    def uninstall(self):
        model = self.model()
        if self.installed and model.build_callback is self:
            model.build_callback = self.previous
            self.installed = False

    def __call__(self, built_obj):
        if self.previous is not None:
            self.previous(built_obj)
        ready = []
        for entry in self.waiting:
            entry[0].discard(id(built_obj))
            if not entry[0]:
                ready.append(entry)
        self.waiting = [entry for entry in self.waiting if entry[0]]
        # the end of the build's callbacks after those that the same object
        # made ready, which may be what they check
        ready.sort(key=lambda entry: entry[1] is self.at_end_callback)
        for _, callback in ready:
            callback()
        if not self.waiting:
            self.uninstall()


def build_state(model):
    """The `BuildState` of ``model`` (made on first use)."""
    state = _STATES.get(model)
    if state is None:
        state = _STATES[model] = BuildState(model)
    return state


def when_built(model, objs, callback):
    """Call ``callback()`` once every object in ``objs`` has been built into
    ``model`` (at once if they all have).

    Lets a rule depend on another connection whatever order they were created
    in, without building that connection out of turn.
    """
    pending = {id(obj) for obj in objs if not model.has_built(obj)}
    if not pending:
        callback()
        return
    state = build_state(model)
    state.waiting.append([pending, callback])
    state.install()


def when_model_built(model, callback):
    """Call ``callback()`` once every object of the network being built (the
    model's toplevel network) has been built, or never if there is none.

    Callbacks run in the order they were registered, once per model.
    """
    if model.toplevel is None:
        return
    state = build_state(model)
    if state.at_end is not None:
        state.at_end.append(callback)
        return
    state.at_end = [callback]

    def call_all():
        for cb in state.at_end:
            cb()

    state.at_end_callback = call_all
    when_built(model, model.toplevel.all_objects, call_all)


def publish(model, key, value):
    """Make ``value`` known under ``key``, calling those waiting for it."""
    published = build_state(model).published
    entry = published.get(key)
    published[key] = ("value", value)
    if entry is not None and entry[0] == "waiting":
        for callback in entry[1]:
            callback(value)


def when_published(model, key, callback):
    """Call ``callback(value)`` once ``value`` is published under ``key``."""
    published = build_state(model).published
    entry = published.setdefault(key, ("waiting", []))
    if entry[0] == "value":
        callback(entry[1])
    else:
        entry[1].append(callback)
