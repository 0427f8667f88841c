"""Sign-up forms for prospects: people without a card who ask for the library's news (double opt-in)."""
