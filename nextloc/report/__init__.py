"""The book's generated files: statistics, claims and verdicts, tables, figures, the
appendix, the table of contents, the PDF. Built on everything below it."""
