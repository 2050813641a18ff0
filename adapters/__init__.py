"""Host adapters, one subpackage per host family (installed as ``reusegate.adapters``)."""
