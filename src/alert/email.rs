//! E-mail over SMTP with lettre (to be filled).
