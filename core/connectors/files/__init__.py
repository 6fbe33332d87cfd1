"""Portable files: Parquet and JSONL exports that any other tool can read back."""
