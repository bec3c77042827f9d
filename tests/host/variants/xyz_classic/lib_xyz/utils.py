"""Forge Classic's ``lib_xyz/utils.py``: ``boolean_choice`` lives here, not in the plot script."""


def boolean_choice(reverse: bool = False):
    def choice():
        return ["False", "True"] if reverse else ["True", "False"]

    return choice
