"""The docs: their code blocks run, their tables match the code, every public name is documented."""
