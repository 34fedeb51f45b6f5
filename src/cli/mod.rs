//! One-shot commands.
