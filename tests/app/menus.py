"""Export menus in AppTest: a menu draws its download buttons only while it is open."""


def open_menus(at):
    """Open every export menu of the view, as a reader's click on each would, and rerun: a
    menu draws its download buttons only while it is open (lib/ui/draw.py)."""
    for menu in at.get("popover"):
        at.session_state[menu.proto.popover.id.split("-", 2)[2]] = True
    return at.run()
