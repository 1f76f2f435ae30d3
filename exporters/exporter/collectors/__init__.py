"""One collector per source; each yields fresh metric families on every scrape."""
