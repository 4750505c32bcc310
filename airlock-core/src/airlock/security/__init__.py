"""The security core: who is asking (peers), sessions and their tokens, TOTP codes
and approvals, the vault of credentials, the tamper-evident audit log, and what the
person sees and answers on a channel (prompts, replies, channels).
"""
