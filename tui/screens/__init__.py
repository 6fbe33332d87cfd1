"""One screen per file; `base.FerryScreen` gives each the shell's header and footer."""
