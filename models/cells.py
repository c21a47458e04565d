"""The aggregate tables of conversation figures, described once: the keys of their cells.

Ingestion adds each conversation's figures to one cell per table (`ingest.aggregates`: the
cell of its start day, source and assignee, of each of its tags, of each pair of its tags; and,
for the heatmap, of its start hour, with its assignee, with each of its tags), in key order; a
report reads the smallest table whose keys split conversations as it needs
(`resolvers.aggregates.table_for`, through `answers`), or the raw rows when none does.
"""

from dataclasses import dataclass

from sqlalchemy import Table

from models.tables import (
    AgentHourlyFigures,
    DailyFigures,
    HourlyFigures,
    SourceDailyFigures,
    TagAgentDailyFigures,
    TagDailyFigures,
    TagHourlyFigures,
    TagPairDailyFigures,
)


@dataclass(frozen=True)
class Cells:
    """An aggregate table and the keys of its cells (besides `account_id`, in key order)."""

    table: Table
    keys: tuple[str, ...]

    @property
    def tagged(self) -> bool:
        """One cell per conversation tag (a conversation counts in each of its tags')."""
        return "tag_id" in self.keys

    def answers_for(self, other: "Cells") -> bool:
        """Whether `other`'s cells are sums of these (its keys are among these')."""
        return set(other.keys) <= set(self.keys)

    def answers(self, *, agents: bool, tag_rows: bool, tag_filter: bool) -> bool:
        """Whether its cells split conversations as a report needs them: by assignee (`agents`:
        an agent filter or a row per agent), by tag (`tag_rows`: a row per tag), and by one
        conversation tag (`tag_filter`; with tag rows, by the pairs of a conversation's
        tags). Only keys the report needs matter: any other key is summed over."""
        if agents and "assignee_id" not in self.keys:
            return False
        if tag_rows and "tag_id" not in self.keys:
            return False
        return not tag_filter or ("with_tag_id" if tag_rows else "tag_id") in self.keys


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


# In the order ingestion writes them (every writer the same: rows are locked in one order).
DAILY_CELLS = (
    Cells(_table(DailyFigures), ("day", "source", "assignee_id")),
    Cells(_table(SourceDailyFigures), ("day", "source")),
    Cells(_table(TagDailyFigures), ("day", "tag_id", "source")),
    Cells(_table(TagAgentDailyFigures), ("assignee_id", "day", "tag_id", "source")),
    Cells(_table(TagPairDailyFigures), ("with_tag_id", "day", "tag_id", "source")),
)
# The heatmap's cells: per local hour, unfiltered (or by source), by agent, by one tag.
HOURLY_CELLS = (
    Cells(_table(HourlyFigures), ("hour", "source")),
    Cells(_table(AgentHourlyFigures), ("assignee_id", "hour", "source")),
    Cells(_table(TagHourlyFigures), ("tag_id", "hour", "source")),
)
CONVERSATION_CELLS = DAILY_CELLS + HOURLY_CELLS
# The dimensions the click cells count clicks by (`click_daily_figures`: one cell per local day,
# dimension and value): `button` is the button's name, the others the click's columns. The
# widget report has one group per dimension (`by_button`, ...).
CLICK_DIMENSIONS = (
    "button",
    "referrer",
    "utm_campaign",
    "utm_medium",
    "utm_source",
    "utm_term",
    "utm_content",
)
# Fewest keys first: the first table that answers a report has the fewest rows to sum.
SMALLEST_FIRST = tuple(sorted(DAILY_CELLS, key=lambda cells: len(cells.keys)))
HOURLY_SMALLEST_FIRST = tuple(sorted(HOURLY_CELLS, key=lambda cells: len(cells.keys)))
