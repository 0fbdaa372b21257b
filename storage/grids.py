"""The grid tree: finding the grid under a point, and walking up to its centres."""

from __future__ import annotations

from dataclasses import dataclass

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.prepared import prep
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Node, NodeLevel, Person, Role, RoleAssignment


@dataclass
class _Indexed:
    node_id: int
    geometry: object
    prepared: object


class GridLocator:
    """Point-in-polygon lookup over every grid that has a boundary (shapely, STR tree)."""

    def __init__(self, grids: list[Node]):
        self._items = []
        for node in grids:
            if node.boundary:
                geometry = shape(node.boundary)
                self._items.append(_Indexed(node.id, geometry, prep(geometry)))
        self._tree = STRtree([item.geometry for item in self._items]) if self._items else None

    @classmethod
    async def load(cls, session: AsyncSession) -> GridLocator:
        rows = await session.scalars(select(Node).where(Node.level == NodeLevel.grid, Node.boundary.is_not(None)))
        return cls(list(rows))

    def grid_id_at(self, latitude: float, longitude: float) -> int | None:
        """The id of the grid containing the point (GeoJSON order is lon, lat); None outside all."""
        if self._tree is None:
            return None
        point = Point(longitude, latitude)
        for index in self._tree.query(point):
            item = self._items[int(index)]
            if item.prepared.covers(point):
                return item.node_id
        return None


async def find_grid(session: AsyncSession, latitude: float, longitude: float) -> Node | None:
    grid_id = (await GridLocator.load(session)).grid_id_at(latitude, longitude)
    return await session.get(Node, grid_id) if grid_id is not None else None


async def ancestor_at(session: AsyncSession, node: Node, level: NodeLevel) -> Node | None:
    """The node's ancestor (or itself) at `level`."""
    codes = [c for c in node.path.split("/") if c]
    rows = await session.scalars(select(Node).where(Node.code.in_(codes), Node.level == level))
    return rows.first()


async def next_centre(session: AsyncSession, centre: Node) -> Node | None:
    """The grid centre one level up: township → district → city; None at the city."""
    if centre.level == NodeLevel.city or centre.parent_id is None:
        return None
    return await session.get(Node, centre.parent_id)


async def children(session: AsyncSession, parent_code: str | None) -> list[Node]:
    """Child nodes above the household level, by code; the top of the tree when `parent_code` is None."""
    query = select(Node).where(Node.level != NodeLevel.household_unit).order_by(Node.code)
    if parent_code is None:
        query = query.where(Node.parent_id.is_(None))
    else:
        parent = await session.scalar(select(Node).where(Node.code == parent_code))
        if parent is None:
            return []
        query = query.where(Node.parent_id == parent.id)
    return list(await session.scalars(query))


async def node_by_code(session: AsyncSession, code: str) -> Node | None:
    return await session.scalar(select(Node).where(Node.code == code))


async def place_name(session: AsyncSession, node: Node, language: str) -> str:
    """'Township › Community › Grid' in the person's language."""
    codes = [c for c in node.path.split("/") if c]
    rows = {n.code: n for n in await session.scalars(select(Node).where(Node.code.in_(codes)))}
    names = [rows[c].name(language) for c in codes if c in rows and rows[c].level not in (NodeLevel.city, NodeLevel.district)]
    return " › ".join(names)


# The staff a grid publishes with their names and numbers (Art. 20).
PUBLISHED_ROLES = (Role.grid_chief, Role.grid_instructor, Role.grid_worker, Role.grid_worker_part_time)


async def published_staff(session: AsyncSession, grid_id: int) -> list[tuple[Role, str | None, str | None]]:
    """(role, name, phone) of the grid's chief, instructor and workers who gave a name or a number.

    A chief or instructor attached to the community above the grid (one for several grids) is the grid's too.
    """
    grid = await session.get(Node, grid_id)
    community = await ancestor_at(session, grid, NodeLevel.community) if grid is not None else None
    leaders = (Role.grid_chief, Role.grid_instructor)
    where_attached = RoleAssignment.node_id == grid_id
    if community is not None:
        where_attached = or_(where_attached, and_(RoleAssignment.node_id == community.id, RoleAssignment.role.in_(leaders)))
    rows = await session.execute(
        select(RoleAssignment.role, Person.display_name, Person.phone)
        .join(Person, Person.id == RoleAssignment.person_id)
        .where(where_attached, RoleAssignment.revoked_at.is_(None), RoleAssignment.role.in_(PUBLISHED_ROLES))
        .order_by(RoleAssignment.role, Person.display_name)
    )
    order = {role: i for i, role in enumerate(PUBLISHED_ROLES)}
    found = [(role, name, phone) for role, name, phone in rows if name or phone]
    return sorted(found, key=lambda row: order[row[0]])
