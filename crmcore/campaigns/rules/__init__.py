"""The segment rule language (fields, operators, validation), its compiler to SQL, and the builder's tree edits."""
