-- Placeholder for version 6, taken by another branch; dropped at merge.
SELECT 1;
