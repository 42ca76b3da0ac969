"""PostgreSQL full-text search for the knowledge base; nothing on other databases.

Adds the ``unaccent`` extension, two text search configurations that remove accents before
stemming (``sophie_pt``, ``sophie_en``), a ``search_vector`` column (title A, keywords B,
content C) kept up to date by a trigger, and a GIN index on it. The column is not a model
field, so the model stays portable; the search engine queries it with SQL. A trigger (rather
than a generated column) lets later migrations change the type of title or content.
"""

from __future__ import annotations

from django.db import migrations

TABLE = "sophie_chat_knowledgebaseentry"

FORWARD = f"""
CREATE EXTENSION IF NOT EXISTS unaccent;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'sophie_pt') THEN
        CREATE TEXT SEARCH CONFIGURATION sophie_pt (COPY = portuguese);
        ALTER TEXT SEARCH CONFIGURATION sophie_pt
            ALTER MAPPING FOR hword, hword_part, word WITH unaccent, portuguese_stem;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'sophie_en') THEN
        CREATE TEXT SEARCH CONFIGURATION sophie_en (COPY = english);
        ALTER TEXT SEARCH CONFIGURATION sophie_en
            ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION sophie_kb_vector(lang text, title text, keywords text, content text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN lower(lang) LIKE 'en%'
    THEN setweight(to_tsvector('sophie_en'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('sophie_en'::regconfig, coalesce(keywords, '')), 'B')
        || setweight(to_tsvector('sophie_en'::regconfig, coalesce(content, '')), 'C')
    ELSE setweight(to_tsvector('sophie_pt'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('sophie_pt'::regconfig, coalesce(keywords, '')), 'B')
        || setweight(to_tsvector('sophie_pt'::regconfig, coalesce(content, '')), 'C')
    END
$$;
CREATE OR REPLACE FUNCTION sophie_kb_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := sophie_kb_vector(NEW.language, NEW.title, NEW.keywords, NEW.content);
    RETURN NEW;
END
$$;
ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS search_vector tsvector;
DROP TRIGGER IF EXISTS sophie_kb_vector_update ON {TABLE};
CREATE TRIGGER sophie_kb_vector_update BEFORE INSERT OR UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION sophie_kb_vector_trigger();
UPDATE {TABLE} SET search_vector = sophie_kb_vector(language, title, keywords, content);
CREATE INDEX IF NOT EXISTS sophie_kb_search_vector ON {TABLE} USING gin (search_vector);
"""

BACKWARD = f"""
DROP INDEX IF EXISTS sophie_kb_search_vector;
DROP TRIGGER IF EXISTS sophie_kb_vector_update ON {TABLE};
ALTER TABLE {TABLE} DROP COLUMN IF EXISTS search_vector;
DROP FUNCTION IF EXISTS sophie_kb_vector_trigger();
DROP FUNCTION IF EXISTS sophie_kb_vector(text, text, text, text);
DROP TEXT SEARCH CONFIGURATION IF EXISTS sophie_pt;
DROP TEXT SEARCH CONFIGURATION IF EXISTS sophie_en;
"""


def _run(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            # A plain cursor: no parameters, so the '%' of LIKE patterns stays as it is.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("sophie_chat", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False),
    ]
