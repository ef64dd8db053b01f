"""Data sets: real music (Lakh MIDI with TOP-MAGD / MASD labels, a MIDI folder tree, POP909) and
LLM-MIDI runs, as windowed piano rolls for classification and as phrases for melody completion."""
