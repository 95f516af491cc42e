"""DFPIR's data layer: dataset layouts and pairing (``layouts``), sample transforms (``transforms``),
the training mixture (``train``), the test sets (``test``), ``--check_data`` (``check``) and the
stand-in dataset generator (``sample``). Import the submodules directly; nothing is loaded here.
"""
