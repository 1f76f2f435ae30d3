"""Local alert captures standing in for Slack, a mail relay and a pager webhook."""
