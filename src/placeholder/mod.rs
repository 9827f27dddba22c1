//! Secret placeholders: parsing, references and resolution (DESIGN.md §4).
