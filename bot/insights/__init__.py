"""What analysts read: stats, new-intent discovery, review export, log export."""
