"""Ferry's engine: connectors, mapping, the streaming pipeline and its journal.

Nothing here imports Textual or prints; the TUI and the CLI are views of what this
package publishes (see ``../shared/DESIGN.md``).
"""

__version__ = "0.1.0"
