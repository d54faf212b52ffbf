module drishti.local/pause

go 1.25
