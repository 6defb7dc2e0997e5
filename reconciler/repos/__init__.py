"""Ops repos: local checkouts kept in step with one branch of a git remote.

``urls`` validates and redacts repository URLs, ``git`` is the only place that runs git,
``explain`` turns git's stderr into words, ``layout`` owns the hidden entries beside each
checkout, ``checkout`` is the clone/fetch/reset state machine, and ``publish`` turns a folder
into a repository for the demo and tests.
"""
