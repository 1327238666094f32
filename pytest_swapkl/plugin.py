"""pytest glue, registered through the `pytest11` entry point.

It loads in every pytest run of the environment, so it must stay cheap: no torch
import here, ever. The audit's options and generated tests arrive with the plugin
issue; until then the plugin is deliberately inert.
"""
