"""The OpenAI chat-completions protocol over policyqa: models, messages, errors, keys, rendering.

The router is ``service/api/routes/openai_compat.py``.
"""
