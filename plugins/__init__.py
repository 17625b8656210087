"""Built-in skvae plugins.

Installed as the ``skvae_plugins`` package and registered through the
``skvae`` entry-point group in ``pyproject.toml``, exactly as a third-party
package registers its plugins. Each module holds one plugin and its hook.
"""
