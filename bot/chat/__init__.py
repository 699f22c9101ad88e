"""A customer's turn: conversation rules, the HTTP chat pipeline and its batchers, the spool, redaction."""
