"""Tables, the database, migrations, tickets, reviews and learned examples."""
