"""The real static analysers behind ``static`` components, one module per tool (ruff/bandit/radon, ESLint,
clang-tidy); :mod:`themis_rm.reward.static` says which tool reads which language."""
