"""The error of a template.yml that cannot be used as written. It has a module of its own because both the
template reader (`template`) and the EventBridge trigger and rule readers it calls (`eventbridge`) raise
it."""


class TemplateError(ValueError):
    """template.yml cannot be used; the message names the resource path."""
