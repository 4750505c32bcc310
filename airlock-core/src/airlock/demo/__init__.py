"""``airlock demo``: the whole product on a throwaway home, with no account and no network."""
