-- screenpop demo data set: the company systems of "Nordkaffee Distribution",
-- a distributor of coffee, café equipment and hospitality supplies with
-- customers in nine countries.
--
-- Four schemas stand for four systems a call center would have to ask:
--   sales       the CRM: customers, contact persons and their phones (the
--               directory lives here), the product catalogue, two years of
--               orders and order lines, and what each customer is worth
--               (lifetime value, tier, trend)
--   accounting  customer accounts, invoices (some overdue), payments, and
--               bills from the customers who also supply us
--   credit      credit limits, risk classes, the terms on file and the terms
--               an agent may offer
--   service     the service desk: tickets, the machines installed at
--               customers, service cases and warranty claims
--
-- Loading it again replaces everything (DROP SCHEMA ... CASCADE): it is
-- idempotent and runs in one transaction. Dates are relative to the day it
-- is loaded, so "overdue" and "recent" stay true; the pseudo-random parts
-- are seeded and come out the same on every load of the same day.
--
-- Load it with `make demo-db` (see README.md). Only plain SQL: no psql
-- meta-commands, so any client (and the Go tests) can run it.

SET client_min_messages = warning;  -- no NOTICE per dropped table on a reload

BEGIN;

DROP SCHEMA IF EXISTS service CASCADE;
DROP SCHEMA IF EXISTS credit CASCADE;
DROP SCHEMA IF EXISTS accounting CASCADE;
DROP SCHEMA IF EXISTS sales CASCADE;

CREATE SCHEMA sales;
CREATE SCHEMA accounting;
CREATE SCHEMA credit;
CREATE SCHEMA service;

COMMENT ON SCHEMA sales IS 'screenpop demo: CRM (customers, contacts, products, orders)';
COMMENT ON SCHEMA accounting IS 'screenpop demo: receivables, payments, supplier bills';
COMMENT ON SCHEMA credit IS 'screenpop demo: credit limits and payment terms';
COMMENT ON SCHEMA service IS 'screenpop demo: service desk tickets, installed machines, service cases, warranty claims';

-- Every random() below follows from this seed.
DO $$ BEGIN PERFORM setseed(0.4242); END $$;

---------------------------------------------------------------------------
-- sales: customers, contacts, the directory
---------------------------------------------------------------------------

CREATE TABLE sales.customers (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('person', 'company')),
    segment      text NOT NULL CHECK (segment IN ('cafe', 'restaurant', 'hotel', 'office', 'retail', 'roaster', 'home')),
    phone        text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),  -- main number, E.164
    email        text,
    city         text NOT NULL,
    country      char(2) NOT NULL,
    currency     char(3) NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    since        date NOT NULL,
    -- How often the customer orders, relative to the others: used only to
    -- generate the order history below.
    order_weight numeric NOT NULL DEFAULT 1
);

CREATE TABLE sales.contacts (
    id          serial PRIMARY KEY,
    customer_id text NOT NULL REFERENCES sales.customers,
    name        text NOT NULL,
    role        text,
    email       text,
    phone       text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    mobile      text CHECK (mobile ~ '^\+[1-9][0-9]{6,14}$')
);

-- The key customers of the demo: the numbers in README.md belong to them.
INSERT INTO sales.customers (id, name, kind, segment, phone, email, city, country, currency, tags, since, order_weight) VALUES
 ('C1001', 'Café Morgenrot GmbH',            'company', 'cafe',       '+493090182000',  'hallo@cafe-morgenrot.example',     'Berlin',        'DE', 'EUR', '{vip}',               current_date - 1650, 8),
 ('C1002', 'Hotel Alpenblick AG',            'company', 'hotel',      '+43512567890',   'einkauf@alpenblick.example',       'Innsbruck',     'AT', 'EUR', '{}',                  current_date - 1400, 5),
 ('C1003', 'Brasserie du Marché SARL',       'company', 'restaurant', '+33199001234',   'contact@brasserie-marche.example', 'Paris',         'FR', 'EUR', '{}',                  current_date - 1200, 5),
 ('C1004', 'Rösterei Hansen KG',             'company', 'roaster',    '+4942155501234', 'info@roesterei-hansen.example',    'Bremen',        'DE', 'EUR', '{supplier}',          current_date - 2100, 3),
 ('C1005', 'The Daily Grind Ltd',            'company', 'cafe',       '+442079460123',  'orders@dailygrind.example',        'London',        'GB', 'GBP', '{}',                  current_date - 1100, 6),
 ('C1006', 'Brew Brothers Coffee LLC',       'company', 'cafe',       '+12125550147',   'hello@brewbrothers.example',       'New York',      'US', 'USD', '{}',                  current_date - 900,  5),
 ('C1007', 'Kaffeehaus Zürich AG',           'company', 'cafe',       '+41446681800',   'info@kaffeehaus-zh.example',       'Zürich',        'CH', 'CHF', '{vip}',               current_date - 1300, 6),
 ('C1008', 'De Koffiebar BV',                'company', 'cafe',       '+31205550123',   'info@koffiebar.example',           'Amsterdam',     'NL', 'EUR', '{}',                  current_date - 1000, 4),
 ('C1009', 'Trattoria Da Enzo Srl',          'company', 'restaurant', '+390255550101',  'enzo@trattoria-enzo.example',      'Milano',        'IT', 'EUR', '{}',                  current_date - 950,  3),
 ('C1010', 'Hostal Sol y Mar SL',            'company', 'hotel',      '+34935550123',   'reservas@solymar.example',         'Barcelona',     'ES', 'EUR', '{}',                  current_date - 800,  3),
 ('C1011', 'Kantinen-Service Isar GmbH',     'company', 'office',     '+498920194400',  'einkauf@kantine-isar.example',     'München',       'DE', 'EUR', '{}',                  current_date - 1500, 6),
 ('C1012', 'Bäckerei Krume & Co. KG',        'company', 'cafe',       '+4934155501313', 'info@baeckerei-krume.example',     'Leipzig',       'DE', 'EUR', '{}',                  current_date - 1250, 5),
 ('C1013', 'Grand Hotel Ringstraße GmbH',    'company', 'hotel',      '+43153412000',   'purchasing@grandhotel-ring.example','Wien',         'AT', 'EUR', '{vip}',               current_date - 1800, 7),
 ('C1014', 'Coworking Loft Ehrenfeld GmbH',  'company', 'office',     '+4922155501234', 'office@loft-ehrenfeld.example',    'Köln',          'DE', 'EUR', '{}',                  current_date - 700,  4),
 ('C1015', 'Bistro Quai Ouest SARL',         'company', 'restaurant', '+33478550123',   'bonjour@quai-ouest.example',       'Lyon',          'FR', 'EUR', '{}',                  current_date - 1000, 4),
 ('C1016', 'Northern Catering Supplies Ltd', 'company', 'retail',     '+441615550123',  'trade@northern-catering.example',  'Manchester',    'GB', 'GBP', '{supplier,reseller}', current_date - 1600, 5),
 ('C1017', 'Café Central Graz OG',           'company', 'cafe',       '+433165550123',  'office@cafecentral-graz.example',  'Graz',          'AT', 'EUR', '{}',                  current_date - 600,  3),
 ('C1018', 'Kaffee & Kuchen Schmidt e.K.',   'company', 'cafe',       '+495115550123',  'schmidt@kaffee-kuchen.example',    'Hannover',      'DE', 'EUR', '{}',                  current_date - 850,  3),
 ('C1019', 'Feinkost Lindner GmbH',          'company', 'retail',     '+496955501234',  'einkauf@feinkost-lindner.example', 'Frankfurt',     'DE', 'EUR', '{reseller}',          current_date - 1350, 4),
 ('C1020', 'Golden Gate Roasters Inc.',      'company', 'roaster',    '+14155550134',   'ops@ggroasters.example',           'San Francisco', 'US', 'USD', '{supplier}',          current_date - 750,  2),
 ('P2001', 'Dr. Thomas Müller',              'person',  'home',       '+4971123456780', 'thomas.mueller@mail.example',      'Stuttgart',     'DE', 'EUR', '{}',                  current_date - 500,  0.6),
 ('P2002', 'Sophie Martin',                  'person',  'home',       '+33698765432',   'sophie.martin@mail.example',       'Lyon',          'FR', 'EUR', '{}',                  current_date - 420,  0.5),
 ('P2003', 'Katharina Berger',               'person',  'home',       '+436625550123',  'k.berger@mail.example',            'Salzburg',      'AT', 'EUR', '{}',                  current_date - 650,  0.5),
 ('P2004', 'Lukas Weber',                    'person',  'home',       '+4935155501234', 'lukas.weber@mail.example',         'Dresden',       'DE', 'EUR', '{}',                  current_date - 380,  0.4),
 ('P2005', 'Marco Rossi',                    'person',  'home',       '+390655550123',  'marco.rossi@mail.example',         'Roma',          'IT', 'EUR', '{}',                  current_date - 300,  0.4),
 ('P2006', 'Jonas Becker',                   'person',  'home',       '+4915123456702', 'jonas.becker@mail.example',        'Berlin',        'DE', 'EUR', '{}',                  current_date - 400,  0.4),
 ('P2007', 'Anke de Vries',                  'person',  'home',       '+31302550123',   'anke.devries@mail.example',        'Utrecht',       'NL', 'EUR', '{}',                  current_date - 520,  0.4),
 ('P2008', 'Emily Davis',                    'person',  'home',       '+16175550134',   'emily.davis@mail.example',         'Boston',        'US', 'USD', '{}',                  current_date - 450,  0.4);

INSERT INTO sales.contacts (customer_id, name, role, email, phone, mobile) VALUES
 ('C1001', 'Anna Schulz',      'Owner',              'anna@cafe-morgenrot.example',        NULL,             '+4915123456701'),
 -- Jonas is also a private customer (P2006): his mobile matches two customers.
 ('C1001', 'Jonas Becker',     'Head barista',       'jonas@cafe-morgenrot.example',       '+493090182011',  '+4915123456702'),
 ('C1002', 'Maria Gruber',     'Purchasing',         'm.gruber@alpenblick.example',        '+43512567891',   '+436641234567'),
 ('C1002', 'Stefan Hofer',     'F&B manager',        's.hofer@alpenblick.example',         '+43512567892',   NULL),
 ('C1003', 'Luc Moreau',       'Gérant',             'luc@brasserie-marche.example',       NULL,             '+33612345678'),
 ('C1004', 'Henrik Hansen',    'Managing partner',   'henrik@roesterei-hansen.example',    '+4942112345678', '+4917612345678'),
 ('C1005', 'Oliver Smith',     'Manager',            'oliver@dailygrind.example',          NULL,             '+447911123456'),
 ('C1006', 'Mike Johnson',     'Owner',              'mike@brewbrothers.example',          '+12125550199',   NULL),
 ('C1007', 'Lea Meier',        'Café manager',       'lea.meier@kaffeehaus-zh.example',    NULL,             '+41795551234'),
 ('C1008', 'Daan Visser',      'Owner',              'daan@koffiebar.example',             NULL,             '+31612345678'),
 ('C1009', 'Enzo Bianchi',     'Titolare',           'enzo@trattoria-enzo.example',        NULL,             '+393331234567'),
 ('C1010', 'Lucía García',     'Directora',          'lucia@solymar.example',              '+34935550124',   NULL),
 ('C1011', 'Ralf Zimmermann',  'Head of purchasing', 'r.zimmermann@kantine-isar.example',  '+498920194410',  '+4916098765432'),
 ('C1012', 'Petra Krume',      'Owner',              'petra@baeckerei-krume.example',      '+4934112345678', NULL),
 ('C1013', 'Alexander Wagner', 'Purchasing',         'a.wagner@grandhotel-ring.example',   '+43153412010',   '+436761234567'),
 ('C1013', 'Eva Steiner',      'Accounts payable',   'e.steiner@grandhotel-ring.example',  '+43153412020',   NULL),
 ('C1014', 'Miriam Koch',      'Office manager',     'miriam@loft-ehrenfeld.example',      NULL,             '+4917698765432'),
 ('C1015', 'Camille Bernard',  'Gérante',            'camille@quai-ouest.example',         NULL,             '+33687654321'),
 ('C1016', 'George Taylor',    'Trade buyer',        'g.taylor@northern-catering.example', '+441615550124',  NULL),
 ('C1019', 'Sabine Lindner',   'Owner',              'sabine@feinkost-lindner.example',    '+496955501235',  NULL),
 ('C1020', 'Kevin Nguyen',     'Operations',         'kevin@ggroasters.example',           '+14155550135',   NULL);

-- Volume: sixty more business customers across the same countries, so that
-- the purchase history has enough buyers for "likely next purchases".
INSERT INTO sales.customers (id, name, kind, segment, phone, email, city, country, currency, tags, since, order_weight)
SELECT 'C' || (1100 + g),
       format(n.pattern, w.word) || ' ' || c.legal,
       'company', n.segment,
       '+' || (c.base + g)::text,
       'info@customer' || (1100 + g) || '.example',
       c.city, c.country, c.currency,
       CASE WHEN g % 17 = 0 THEN '{supplier}'::text[] ELSE '{}' END,
       current_date - (120 + (g * 37) % 1400),
       1 + (g % 3)
  FROM generate_series(1, 60) AS g
  JOIN (VALUES (0, 'Berlin', 'DE', 'EUR', 'GmbH', 493055520000),
               (1, 'Hamburg', 'DE', 'EUR', 'GmbH', 494055520000),
               (2, 'München', 'DE', 'EUR', 'GmbH', 498955520000),
               (3, 'Köln', 'DE', 'EUR', 'GmbH', 4922155520000),
               (4, 'Frankfurt', 'DE', 'EUR', 'GmbH', 496955520000),
               (5, 'Wien', 'AT', 'EUR', 'GmbH', 43155520000),
               (6, 'Zürich', 'CH', 'CHF', 'AG', 41445552000),
               (7, 'Paris', 'FR', 'EUR', 'SARL', 33155520000),
               (8, 'London', 'GB', 'GBP', 'Ltd', 442079461000),
               (9, 'Amsterdam', 'NL', 'EUR', 'BV', 31205552000),
               (10, 'Milano', 'IT', 'EUR', 'Srl', 390255520000),
               (11, 'Madrid', 'ES', 'EUR', 'SL', 34915552000),
               (12, 'Chicago', 'US', 'USD', 'Inc.', 13125552000))
       AS c(i, city, country, currency, legal, base) ON c.i = g % 13
  JOIN (VALUES (0, 'cafe', 'Café %s'), (1, 'cafe', 'Kaffeebar %s'), (2, 'restaurant', 'Restaurant %s'),
               (3, 'hotel', 'Hotel %s'), (4, 'office', '%s Business Center'), (5, 'cafe', 'Bakery %s'),
               (6, 'restaurant', 'Bistro %s'), (7, 'retail', 'Delikatessen %s'), (8, 'office', '%s Offices'),
               (9, 'hotel', 'Pension %s'), (10, 'cafe', 'Espresso Bar %s'))
       AS n(i, segment, pattern) ON n.i = (g * 7) % 11
  JOIN (VALUES (0, 'Lindenhof'), (1, 'Am Markt'), (2, 'Sonnenschein'), (3, 'Stern'), (4, 'Parkblick'),
               (5, 'Central'), (6, 'Riverside'), (7, 'Bellevue'), (8, 'Aurora'), (9, 'Miramar'),
               (10, 'Nordlicht'), (11, 'Kastanie'), (12, 'Harbour'), (13, 'Altstadt'), (14, 'Victoria'),
               (15, 'Bohnenglück'), (16, 'Rialto'), (17, 'Alameda'), (18, 'Jardin'), (19, 'Lakeside'))
       AS w(i, word) ON w.i = (g * 3) % 20;

INSERT INTO sales.contacts (customer_id, name, role, email, phone)
SELECT c.id,
       (ARRAY['Julia', 'Markus', 'Laura', 'David', 'Sarah', 'Paul', 'Nina', 'Tobias', 'Clara', 'Felix'])[1 + (g % 10)]
         || ' ' ||
       (ARRAY['Fischer', 'Keller', 'Dubois', 'Brown', 'Jansen', 'Romano', 'López', 'Huber', 'Meyer', 'Clarke'])[1 + ((g * 3) % 10)],
       (ARRAY['Owner', 'Purchasing', 'Manager', 'Office manager'])[1 + (g % 4)],
       'contact' || g || '@' || lower(c.id) || '.example',
       '+' || (substr(c.phone, 2)::bigint + 500)::text
  FROM generate_series(1, 60) AS g
  JOIN sales.customers c ON c.id = 'C' || (1100 + g)
 WHERE g % 2 = 0;

-- The directory: every number a caller may call from, with who it belongs
-- to. A company's switchboard has no contact person; a contact person's
-- office line and mobile both lead to the company.
CREATE VIEW sales.directory AS
SELECT c.phone, c.id, c.name, c.kind, NULL::text AS contact, NULL::text AS role,
       c.email, c.city, c.country, c.tags
  FROM sales.customers c
 WHERE c.phone IS NOT NULL
UNION ALL
SELECT p.phone, c.id, c.name, c.kind, p.name, p.role,
       coalesce(p.email, c.email), c.city, c.country, c.tags
  FROM sales.contacts p JOIN sales.customers c ON c.id = p.customer_id
 WHERE p.phone IS NOT NULL
UNION ALL
SELECT p.mobile, c.id, c.name, c.kind, p.name, p.role,
       coalesce(p.email, c.email), c.city, c.country, c.tags
  FROM sales.contacts p JOIN sales.customers c ON c.id = p.customer_id
 WHERE p.mobile IS NOT NULL;

CREATE INDEX customers_phone ON sales.customers (phone);
CREATE INDEX contacts_phone ON sales.contacts (phone);
CREATE INDEX contacts_mobile ON sales.contacts (mobile);
CREATE INDEX contacts_customer ON sales.contacts (customer_id);

-- What an agent searches when the directory does not know a caller's
-- number (screenpop's directory search: configs/postgres.yaml): a customer
-- by name or e-mail, or one of its contact persons by name or e-mail; the
-- number is then linked to the customer. `words` is what the text typed is
-- looked for in. A large CRM would index it (pg_trgm's gin_trgm_ops) for
-- ILIKE '%...%'; the demo's few hundred rows need no index.
CREATE VIEW sales.directory_search AS
SELECT c.id, c.name, c.kind, NULL::text AS contact, NULL::text AS role,
       c.email, c.city, c.country, c.tags,
       c.name || ' ' || coalesce(c.email, '') AS words
  FROM sales.customers c
UNION ALL
SELECT c.id, c.name, c.kind, p.name, p.role,
       coalesce(p.email, c.email), c.city, c.country, c.tags,
       p.name || ' ' || coalesce(p.email, '') || ' ' || c.name
  FROM sales.contacts p JOIN sales.customers c ON c.id = p.customer_id;

---------------------------------------------------------------------------
-- sales: products and what each kind of customer tends to buy
---------------------------------------------------------------------------

CREATE TABLE sales.products (
    sku        text PRIMARY KEY,
    name       text NOT NULL,
    category   text NOT NULL,
    list_price numeric(10,2) NOT NULL  -- EUR, before the customer's currency
);

INSERT INTO sales.products (sku, name, category, list_price) VALUES
 ('CB-ESP-1K',  'Espresso beans "Milano" 1 kg',            'Coffee',      18.90),
 ('CB-CRE-1K',  'Caffè crema beans 1 kg',                  'Coffee',      16.50),
 ('CB-DEC-1K',  'Decaf espresso beans 1 kg',               'Coffee',      19.80),
 ('CB-ETH-1K',  'Organic single origin Ethiopia 1 kg',     'Coffee',      24.50),
 ('CB-FIL-500', 'Filter coffee, ground, 500 g',            'Coffee',       7.90),
 ('CB-CAP-100', 'Compatible capsules lungo, 100 pcs',      'Coffee',      22.00),
 ('TE-ASS-100', 'Tea assortment, 100 bags',                'Tea & cocoa', 12.40),
 ('CH-COC-1K',  'Hot chocolate powder 1 kg',               'Tea & cocoa', 11.20),
 ('MK-OAT-12',  'Barista oat drink 1 l, case of 12',       'Milk & syrups', 26.40),
 ('SY-VAN-700', 'Vanilla syrup 0.7 l',                     'Milk & syrups',  8.90),
 ('SY-CAR-700', 'Caramel syrup 0.7 l',                     'Milk & syrups',  8.90),
 ('SY-HAZ-700', 'Hazelnut syrup 0.7 l',                    'Milk & syrups',  8.90),
 ('CU-PAP-8',   'Paper cups 8 oz, 1000 pcs',               'Disposables', 54.00),
 ('CU-PAP-12',  'Paper cups 12 oz, 1000 pcs',              'Disposables', 62.00),
 ('CU-LID-80',  'Lids 80 mm, 1000 pcs',                    'Disposables', 28.00),
 ('CU-STR-1K',  'Wooden stirrers, 1000 pcs',               'Disposables',  6.50),
 ('CU-NAP-2K',  'Napkins 2-ply, 2000 pcs',                 'Disposables', 19.00),
 ('SU-STI-1K',  'Sugar sticks, 1000 pcs',                  'Disposables', 17.50),
 ('MA-ESP-2G',  'Espresso machine, 2 groups',              'Machines',  6490.00),
 ('MA-ESP-1G',  'Espresso machine, 1 group',               'Machines',  3290.00),
 ('MA-GRD-64',  'On-demand grinder 64 mm',                 'Machines',  1190.00),
 ('MA-BTC-AUT', 'Bean-to-cup automatic machine',           'Machines',  4890.00),
 ('MA-FIL-BRW', 'Batch filter brewer',                     'Machines',   890.00),
 ('MA-HOME-01', 'Home espresso machine "Casa"',            'Machines',   749.00),
 ('MA-HGR-01',  'Home grinder "Casa"',                     'Machines',   289.00),
 ('MA-MLK-FRO', 'Milk frother',                            'Machines',   189.00),
 ('AC-TMP-58',  'Tamper 58 mm',                            'Accessories', 39.00),
 ('AC-JUG-600', 'Milk jug 600 ml',                         'Accessories', 19.50),
 ('AC-KNK-BOX', 'Knock box',                               'Accessories', 34.00),
 ('CL-TAB-100', 'Cleaning tablets, 100 pcs',               'Care',        24.90),
 ('CL-DSC-1L',  'Descaler 1 l',                            'Care',        14.90),
 ('CL-MLK-1L',  'Milk system cleaner 1 l',                 'Care',        16.90),
 ('CL-BRU-SET', 'Group head brush set',                    'Care',        12.50),
 ('WF-CRT-XL',  'Water filter cartridge XL',               'Care',        89.00),
 ('SP-GSK-58',  'Group head gasket, 2 pcs',                'Spare parts',  9.80),
 ('SP-SHW-58',  'Shower screen 58 mm',                     'Spare parts', 14.50),
 ('SV-MAINT-Y', 'Annual maintenance contract',             'Service',    690.00),
 ('SV-BARISTA', 'Barista training, one day',               'Service',    450.00);

-- What each segment tends to buy, and in what quantity per order. Orders
-- are drawn from these weights, which is what gives the purchase history
-- the patterns the "likely next purchases" query finds.
CREATE TABLE sales.segment_affinity (
    segment     text NOT NULL,
    sku         text NOT NULL REFERENCES sales.products,
    weight      numeric NOT NULL,
    typical_qty int NOT NULL,
    PRIMARY KEY (segment, sku)
);

INSERT INTO sales.segment_affinity (segment, sku, weight, typical_qty) VALUES
 ('cafe', 'CB-ESP-1K', 10, 20), ('cafe', 'CB-CRE-1K', 4, 10), ('cafe', 'CB-DEC-1K', 3, 4), ('cafe', 'CB-ETH-1K', 3, 5),
 ('cafe', 'MK-OAT-12', 7, 4), ('cafe', 'SY-VAN-700', 5, 4), ('cafe', 'SY-CAR-700', 4, 3), ('cafe', 'SY-HAZ-700', 3, 3),
 ('cafe', 'CU-PAP-8', 6, 2), ('cafe', 'CU-PAP-12', 6, 2), ('cafe', 'CU-LID-80', 6, 3), ('cafe', 'CU-STR-1K', 3, 2),
 ('cafe', 'SU-STI-1K', 3, 1), ('cafe', 'CH-COC-1K', 3, 3), ('cafe', 'CL-TAB-100', 4, 2), ('cafe', 'CL-MLK-1L', 3, 2),
 ('cafe', 'AC-JUG-600', 1, 2), ('cafe', 'SP-GSK-58', 1, 2), ('cafe', 'WF-CRT-XL', 1, 1), ('cafe', 'MA-ESP-2G', 0.15, 1),
 ('cafe', 'MA-GRD-64', 0.25, 1), ('cafe', 'SV-MAINT-Y', 0.3, 1), ('cafe', 'SV-BARISTA', 0.3, 1),

 ('restaurant', 'CB-ESP-1K', 8, 8), ('restaurant', 'CB-DEC-1K', 4, 2), ('restaurant', 'TE-ASS-100', 3, 2),
 ('restaurant', 'SU-STI-1K', 4, 1), ('restaurant', 'CU-NAP-2K', 5, 2), ('restaurant', 'CL-TAB-100', 4, 1),
 ('restaurant', 'CL-DSC-1L', 3, 2), ('restaurant', 'SY-HAZ-700', 1, 1), ('restaurant', 'SP-SHW-58', 1, 1),
 ('restaurant', 'MA-ESP-1G', 0.2, 1), ('restaurant', 'MA-GRD-64', 0.2, 1), ('restaurant', 'SV-MAINT-Y', 0.3, 1),

 ('hotel', 'CB-CRE-1K', 8, 15), ('hotel', 'CB-FIL-500', 7, 20), ('hotel', 'TE-ASS-100', 7, 6), ('hotel', 'CH-COC-1K', 4, 4),
 ('hotel', 'CU-NAP-2K', 4, 3), ('hotel', 'SU-STI-1K', 5, 2), ('hotel', 'MK-OAT-12', 3, 3), ('hotel', 'CL-TAB-100', 3, 2),
 ('hotel', 'CL-MLK-1L', 3, 2), ('hotel', 'WF-CRT-XL', 2, 1), ('hotel', 'MA-BTC-AUT', 0.25, 1), ('hotel', 'MA-FIL-BRW', 0.3, 1),
 ('hotel', 'SV-MAINT-Y', 0.4, 1),

 ('office', 'CB-CAP-100', 8, 10), ('office', 'CB-CRE-1K', 6, 6), ('office', 'CB-FIL-500', 6, 10), ('office', 'TE-ASS-100', 5, 4),
 ('office', 'CU-PAP-8', 4, 1), ('office', 'CU-STR-1K', 3, 1), ('office', 'SU-STI-1K', 4, 1), ('office', 'MK-OAT-12', 3, 2),
 ('office', 'CL-DSC-1L', 3, 2), ('office', 'CL-TAB-100', 2, 1), ('office', 'MA-BTC-AUT', 0.25, 1), ('office', 'MA-FIL-BRW', 0.2, 1),
 ('office', 'SV-MAINT-Y', 0.3, 1),

 ('retail', 'CB-ESP-1K', 6, 30), ('retail', 'CB-ETH-1K', 6, 20), ('retail', 'CB-FIL-500', 5, 40), ('retail', 'CB-CAP-100', 5, 20),
 ('retail', 'TE-ASS-100', 4, 20), ('retail', 'CH-COC-1K', 3, 10), ('retail', 'SY-VAN-700', 3, 12), ('retail', 'SY-CAR-700', 3, 12),
 ('retail', 'MA-HOME-01', 0.8, 2), ('retail', 'MA-HGR-01', 0.6, 2), ('retail', 'CL-DSC-1L', 3, 24), ('retail', 'AC-TMP-58', 1, 6),

 ('roaster', 'MA-GRD-64', 1, 1), ('roaster', 'SP-GSK-58', 3, 4), ('roaster', 'SP-SHW-58', 3, 4), ('roaster', 'CL-TAB-100', 4, 3),
 ('roaster', 'CL-BRU-SET', 3, 2), ('roaster', 'CU-PAP-8', 3, 2), ('roaster', 'CU-LID-80', 3, 2), ('roaster', 'MK-OAT-12', 3, 3),
 ('roaster', 'SV-BARISTA', 0.5, 1), ('roaster', 'WF-CRT-XL', 2, 1),

 ('home', 'CB-ESP-1K', 6, 2), ('home', 'CB-ETH-1K', 5, 1), ('home', 'CB-DEC-1K', 2, 1), ('home', 'CL-DSC-1L', 4, 1),
 ('home', 'AC-TMP-58', 2, 1), ('home', 'AC-JUG-600', 2, 1), ('home', 'AC-KNK-BOX', 1, 1), ('home', 'MA-HOME-01', 1, 1),
 ('home', 'MA-HGR-01', 1, 1), ('home', 'MA-MLK-FRO', 1, 1), ('home', 'SY-VAN-700', 1, 1), ('home', 'CL-BRU-SET', 1, 1);

CREATE TABLE sales.fx (
    currency char(3) PRIMARY KEY,
    per_eur  numeric(10,4) NOT NULL
);
INSERT INTO sales.fx VALUES ('EUR', 1), ('CHF', 0.9400), ('GBP', 0.8500), ('USD', 1.0800);

---------------------------------------------------------------------------
-- sales: two years of orders
---------------------------------------------------------------------------

CREATE TABLE sales.orders (
    id          int PRIMARY KEY GENERATED ALWAYS AS IDENTITY (START WITH 10001),
    customer_id text NOT NULL REFERENCES sales.customers,
    ordered_at  date NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'delivered', 'cancelled')),
    currency    char(3) NOT NULL,
    channel     text NOT NULL
);

CREATE TABLE sales.order_lines (
    order_id   int NOT NULL REFERENCES sales.orders,
    line_no    int NOT NULL,
    sku        text NOT NULL REFERENCES sales.products,
    quantity   int NOT NULL CHECK (quantity > 0),
    unit_price numeric(10,2) NOT NULL,
    amount     numeric(12,2) GENERATED ALWAYS AS (quantity * unit_price) STORED,
    PRIMARY KEY (order_id, line_no)
);

-- 900 orders over 730 days, each from a customer who existed by then, drawn
-- in proportion to order_weight (an exponential race: the smallest
-- -ln(U)/weight wins), in date order so order numbers grow with time.
INSERT INTO sales.orders (customer_id, ordered_at, status, currency, channel)
SELECT c.id, d.day,
       CASE WHEN d.day > current_date - 4 THEN 'open'
            WHEN random() < 0.02 THEN 'cancelled'
            ELSE 'delivered' END,
       c.currency,
       (ARRAY['phone', 'web', 'web', 'field rep', 'email'])[1 + floor(random() * 5)::int]
  FROM generate_series(1, 900) AS g
 CROSS JOIN LATERAL (SELECT current_date - floor(random() * 730)::int + 0 * g AS day) d
 CROSS JOIN LATERAL (
        SELECT id, currency FROM sales.customers
         WHERE since <= d.day
         ORDER BY -ln(1 - random()) / order_weight
         LIMIT 1) c
 ORDER BY d.day, g;

-- Hand-picked recent orders, so the demo customers' cards tell a story
-- whatever the draw above gave them.
INSERT INTO sales.orders (customer_id, ordered_at, status, currency, channel) VALUES
 ('C1001', current_date - 12, 'delivered', 'EUR', 'phone'),
 ('C1001', current_date - 1,  'open',      'EUR', 'web'),
 ('C1012', current_date - 70, 'delivered', 'EUR', 'phone'),
 ('C1012', current_date - 2,  'open',      'EUR', 'phone'),
 ('P2001', current_date - 40, 'delivered', 'EUR', 'web'),
 ('P2006', current_date - 25, 'delivered', 'EUR', 'web'),
 ('C1005', current_date - 9,  'delivered', 'GBP', 'email');

-- Lines for the drawn orders: one to five products the customer's segment
-- buys, in about the usual quantity, at list price in the order's currency
-- (larger customers get a few per cent off).
INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, unit_price)
SELECT o.id,
       row_number() OVER (PARTITION BY o.id ORDER BY a.sku),
       a.sku,
       greatest(1, round(a.typical_qty * (0.5 + random())))::int,
       round(p.list_price * fx.per_eur * CASE WHEN c.order_weight >= 5 THEN 0.95 ELSE 1 END, 2)
  FROM sales.orders o
  JOIN sales.customers c ON c.id = o.customer_id
  JOIN sales.fx ON fx.currency = o.currency
 CROSS JOIN LATERAL (
        SELECT sa.sku, sa.typical_qty FROM sales.segment_affinity sa
         WHERE sa.segment = c.segment AND o.id > 0
         ORDER BY -ln(1 - random()) / sa.weight
         LIMIT 1 + floor(random() * 5)::int) a
  JOIN sales.products p ON p.sku = a.sku
 WHERE o.id <= (SELECT max(id) - 7 FROM sales.orders);

-- Lines for the hand-picked orders.
INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, unit_price)
SELECT o.id, l.line_no, l.sku, l.quantity, round(p.list_price * fx.per_eur * l.factor, 2)
  FROM (SELECT id, customer_id, ordered_at, currency,
               row_number() OVER (ORDER BY id) AS n
          FROM sales.orders WHERE id > (SELECT max(id) - 7 FROM sales.orders)) o
  JOIN (VALUES (1, 1, 'MA-ESP-2G', 1, 0.92), (1, 2, 'MA-GRD-64', 2, 0.92), (1, 3, 'SV-BARISTA', 1, 1.0),
               (2, 1, 'CB-ESP-1K', 25, 0.95), (2, 2, 'MK-OAT-12', 6, 0.95), (2, 3, 'CU-PAP-12', 2, 0.95),
               (3, 1, 'CB-ESP-1K', 15, 1.0), (3, 2, 'CU-PAP-8', 3, 1.0), (3, 3, 'SY-VAN-700', 4, 1.0),
               (4, 1, 'CB-ESP-1K', 10, 1.0), (4, 2, 'CU-LID-80', 2, 1.0),
               (5, 1, 'MA-HOME-01', 1, 1.0), (5, 2, 'CB-ETH-1K', 2, 1.0),
               (6, 1, 'CB-ESP-1K', 2, 1.0), (6, 2, 'AC-TMP-58', 1, 1.0),
               (7, 1, 'CB-ESP-1K', 30, 0.95), (7, 2, 'MK-OAT-12', 5, 0.95), (7, 3, 'CU-PAP-12', 3, 0.95))
       AS l(n, line_no, sku, quantity, factor) ON l.n = o.n
  JOIN sales.products p ON p.sku = l.sku
  JOIN sales.fx ON fx.currency = o.currency;

CREATE INDEX orders_customer ON sales.orders (customer_id, ordered_at DESC);
CREATE INDEX order_lines_sku ON sales.order_lines (sku);

---------------------------------------------------------------------------
-- credit: terms, risk classes, limits
---------------------------------------------------------------------------

CREATE TABLE credit.terms (
    code          text PRIMARY KEY,
    label         text NOT NULL,
    net_days      int NOT NULL,
    discount_pct  numeric(4,2) NOT NULL DEFAULT 0,
    discount_days int
);
INSERT INTO credit.terms VALUES
 ('PREPAY', 'Prepayment',                 0, 0, NULL),
 ('NET7',   '7 days net',                 7, 0, NULL),
 ('NET14',  '14 days net',               14, 0, NULL),
 ('2-10-30','2% within 10 days, 30 net', 30, 2, 10),
 ('NET30',  '30 days net',               30, 0, NULL),
 ('NET45',  '45 days net',               45, 0, NULL),
 ('NET60',  '60 days net',               60, 0, NULL);

-- What the credit department allows per risk class: the longest term and
-- whether an early-payment discount may be offered.
CREATE TABLE credit.risk_classes (
    class            char(1) PRIMARY KEY,
    description      text NOT NULL,
    max_net_days     int NOT NULL,
    discount_allowed bool NOT NULL
);
INSERT INTO credit.risk_classes VALUES
 ('A', 'Excellent: long relationship, pays early', 60, true),
 ('B', 'Good',                                     30, true),
 ('C', 'Watch: late payments in the last year',    14, false),
 ('D', 'Prepayment only',                           0, false);

CREATE TABLE credit.accounts (
    customer_id  text PRIMARY KEY REFERENCES sales.customers,
    credit_limit numeric(12,2) NOT NULL,
    currency     char(3) NOT NULL,
    risk_class   char(1) NOT NULL REFERENCES credit.risk_classes,
    terms_code   text NOT NULL REFERENCES credit.terms,  -- the terms on file
    reviewed_on  date NOT NULL,
    note         text
);

INSERT INTO credit.accounts (customer_id, credit_limit, currency, risk_class, terms_code, reviewed_on, note)
SELECT c.id,
       CASE c.segment WHEN 'home' THEN 1500 WHEN 'retail' THEN 40000 WHEN 'hotel' THEN 30000
                      WHEN 'roaster' THEN 25000 ELSE 15000 END
         * CASE WHEN 'vip' = ANY (c.tags) THEN 2 ELSE 1 END,
       c.currency,
       v.class, v.terms, current_date - 30 - (abs(hashtext(c.id)) % 300), v.note
  FROM sales.customers c
  LEFT JOIN (VALUES ('C1001', 'A', 'NET30',   NULL),
                    ('C1004', 'A', 'NET45',   'Also our supplier of roasted beans: net against their bills on request'),
                    ('C1007', 'A', '2-10-30', NULL),
                    ('C1012', 'C', 'NET14',   'Three reminders since spring; ask for payment before new machine orders'),
                    ('C1013', 'A', 'NET60',   'Framework contract until end of next year'),
                    ('C1015', 'C', 'NET14',   'Payment plan agreed by phone, see ticket history'),
                    ('C1016', 'B', 'NET30',   'Reseller; also supplies us disposables'),
                    ('P2004', 'D', 'PREPAY',  'Chargeback on a card payment last year'))
       AS v0(id, class, terms, note) ON v0.id = c.id
 CROSS JOIN LATERAL (
        SELECT coalesce(v0.class, CASE WHEN c.kind = 'person' THEN 'B'
                                       WHEN abs(hashtext(c.id)) % 5 = 0 THEN 'A' ELSE 'B' END) AS class,
               coalesce(v0.terms, CASE WHEN c.kind = 'person' THEN 'NET14' ELSE 'NET30' END) AS terms,
               v0.note) v;

---------------------------------------------------------------------------
-- accounting: accounts, invoices, payments, supplier bills
---------------------------------------------------------------------------

CREATE TABLE accounting.customer_accounts (
    customer_id       text PRIMARY KEY REFERENCES sales.customers,
    currency          char(3) NOT NULL,
    payment_behaviour text NOT NULL CHECK (payment_behaviour IN ('prompt', 'slow', 'late')),
    credit_notes      numeric(12,2) NOT NULL DEFAULT 0  -- credit notes not yet settled
);

INSERT INTO accounting.customer_accounts (customer_id, currency, payment_behaviour, credit_notes)
SELECT c.id, c.currency,
       CASE WHEN c.id IN ('C1012', 'C1015') THEN 'late'
            WHEN c.id IN ('C1003', 'C1009') OR abs(hashtext(c.id || 'pay')) % 6 = 0 THEN 'slow'
            ELSE 'prompt' END,
       CASE WHEN c.id = 'C1001' THEN 120.00 WHEN c.id = 'C1007' THEN 85.50 ELSE 0 END
  FROM sales.customers c;

CREATE TABLE accounting.invoices (
    invoice_no  text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES sales.customers,
    order_id    int REFERENCES sales.orders,
    issued_on   date NOT NULL,
    due_on      date NOT NULL,
    amount      numeric(12,2) NOT NULL,
    paid        numeric(12,2) NOT NULL DEFAULT 0,
    currency    char(3) NOT NULL
);

-- One invoice per delivered order, the day after, due after the customer's
-- terms on file.
INSERT INTO accounting.invoices (invoice_no, customer_id, order_id, issued_on, due_on, amount, currency)
SELECT 'INV-' || to_char(o.ordered_at + 1, 'YYYY') || '-' || o.id,
       o.customer_id, o.id, o.ordered_at + 1, o.ordered_at + 1 + t.net_days,
       sum(l.amount), o.currency
  FROM sales.orders o
  JOIN sales.order_lines l ON l.order_id = o.id
  JOIN credit.accounts ca ON ca.customer_id = o.customer_id
  JOIN credit.terms t ON t.code = ca.terms_code
 WHERE o.status = 'delivered'
 GROUP BY o.id, o.customer_id, o.ordered_at, o.currency, t.net_days;

CREATE TABLE accounting.payments (
    id          serial PRIMARY KEY,
    customer_id text NOT NULL REFERENCES sales.customers,
    invoice_no  text REFERENCES accounting.invoices,
    paid_on     date NOT NULL,
    amount      numeric(12,2) NOT NULL,
    method      text NOT NULL
);

-- Prompt payers pay around the due date, slow ones up to three weeks late,
-- late ones a month or two late and have left the last four months open.
INSERT INTO accounting.payments (customer_id, invoice_no, paid_on, amount, method)
SELECT i.customer_id, i.invoice_no, p.day, i.amount,
       CASE WHEN i.customer_id LIKE 'P%' THEN 'card' ELSE 'bank transfer' END
  FROM accounting.invoices i
  JOIN accounting.customer_accounts a ON a.customer_id = i.customer_id
 CROSS JOIN LATERAL (
        SELECT greatest(i.issued_on, CASE a.payment_behaviour
                   WHEN 'prompt' THEN i.due_on - floor(random() * 8)::int
                   WHEN 'slow'   THEN i.due_on + floor(random() * 22)::int
                   ELSE               i.due_on + 20 + floor(random() * 40)::int END) AS day
         WHERE i.amount IS NOT NULL) p
 WHERE p.day < current_date
   AND NOT (a.payment_behaviour = 'late' AND i.issued_on > current_date - 120)
 ORDER BY p.day, i.invoice_no;

-- A part payment on one of Bäckerei Krume's open invoices.
INSERT INTO accounting.payments (customer_id, invoice_no, paid_on, amount, method)
SELECT customer_id, invoice_no, current_date - 6, round(amount / 3, 2), 'bank transfer'
  FROM accounting.invoices
 WHERE customer_id = 'C1012' AND issued_on > current_date - 120
 ORDER BY issued_on
 LIMIT 1;

UPDATE accounting.invoices i
   SET paid = s.total
  FROM (SELECT invoice_no, sum(amount) AS total FROM accounting.payments GROUP BY invoice_no) s
 WHERE s.invoice_no = i.invoice_no;

-- Bills from the customers who also supply us.
CREATE TABLE accounting.payables (
    bill_no     text PRIMARY KEY,
    supplier_id text NOT NULL REFERENCES sales.customers,
    received_on date NOT NULL,
    due_on      date NOT NULL,
    amount      numeric(12,2) NOT NULL,
    currency    char(3) NOT NULL,
    paid        bool NOT NULL DEFAULT false,
    description text NOT NULL
);

INSERT INTO accounting.payables (bill_no, supplier_id, received_on, due_on, amount, currency, paid, description)
SELECT 'B-' || c.id || '-' || m, c.id,
       current_date - 30 * m, current_date - 30 * m + 30,
       round((800 + random() * 4000)::numeric, 2), c.currency,
       m > 1,
       CASE WHEN c.segment = 'roaster' THEN 'Roasted beans, monthly delivery'
            WHEN c.segment = 'retail' THEN 'Disposables, monthly delivery'
            ELSE 'Services' END
  FROM sales.customers c
 CROSS JOIN generate_series(0, 11) AS m
 WHERE 'supplier' = ANY (c.tags);

CREATE INDEX invoices_customer ON accounting.invoices (customer_id, due_on);
CREATE INDEX payments_customer ON accounting.payments (customer_id, paid_on DESC);

-- What the card's accounting section shows: open balance, overdue part,
-- unsettled credit notes, last payment, and what we owe a supplier-customer.
CREATE VIEW accounting.balances AS
SELECT a.customer_id,
       a.currency,
       (coalesce(sum(i.amount - i.paid) FILTER (WHERE i.paid < i.amount), 0) - a.credit_notes)::numeric(12,2) AS balance,
       coalesce(sum(i.amount - i.paid) FILTER (WHERE i.paid < i.amount AND i.due_on < current_date), 0)::numeric(12,2) AS overdue_total,
       count(i.invoice_no) FILTER (WHERE i.paid < i.amount AND i.due_on < current_date) AS overdue_invoices,
       a.credit_notes,
       (SELECT max(p.paid_on) FROM accounting.payments p WHERE p.customer_id = a.customer_id) AS last_payment_date,
       (SELECT coalesce(sum(b.amount), 0) FROM accounting.payables b
         WHERE b.supplier_id = a.customer_id AND NOT b.paid)::numeric(12,2) AS we_owe
  FROM accounting.customer_accounts a
  LEFT JOIN accounting.invoices i ON i.customer_id = a.customer_id
 GROUP BY a.customer_id, a.currency, a.credit_notes;

---------------------------------------------------------------------------
-- credit: what the customer may still buy on account, and on what terms
---------------------------------------------------------------------------

-- Exposure is what the customer owes plus what is ordered but not yet
-- invoiced. The terms an agent may offer follow the risk class: the longest
-- it allows and the ones down to half of that (shorter ones go without
-- saying); a customer with overdue invoices is offered 7 days at most and
-- no discount.
CREATE VIEW credit.standing AS
WITH open_items AS (
    SELECT customer_id, sum(amount - paid) AS amount, bool_or(due_on < current_date) AS overdue
      FROM accounting.invoices WHERE paid < amount GROUP BY customer_id
), open_orders AS (
    SELECT o.customer_id, sum(l.amount) AS amount
      FROM sales.orders o JOIN sales.order_lines l ON l.order_id = o.id
     WHERE o.status = 'open' GROUP BY o.customer_id
)
SELECT ca.customer_id,
       ca.currency,
       ca.credit_limit,
       (coalesce(oi.amount, 0) + coalesce(oo.amount, 0))::numeric(12,2) AS exposure,
       (ca.credit_limit - coalesce(oi.amount, 0) - coalesce(oo.amount, 0))::numeric(12,2) AS available,
       ca.risk_class,
       r.description AS risk_description,
       t.label AS terms_on_file,
       (SELECT string_agg(o.label, ', ' ORDER BY o.net_days DESC, o.discount_pct DESC)
          FROM credit.terms o
         WHERE o.net_days <= lim.max_days
           AND o.net_days * 2 >= lim.max_days
           AND (o.discount_pct = 0 OR (r.discount_allowed AND NOT coalesce(oi.overdue, false)))
       ) AS offered_terms,
       coalesce(oi.overdue, false) AS has_overdue,
       ca.reviewed_on,
       ca.note
  FROM credit.accounts ca
  JOIN credit.risk_classes r ON r.class = ca.risk_class
  JOIN credit.terms t ON t.code = ca.terms_code
  LEFT JOIN open_items oi ON oi.customer_id = ca.customer_id
  LEFT JOIN open_orders oo ON oo.customer_id = ca.customer_id
 CROSS JOIN LATERAL (
        SELECT CASE WHEN coalesce(oi.overdue, false) THEN least(r.max_net_days, 7)
                    ELSE r.max_net_days END AS max_days) lim;

---------------------------------------------------------------------------
-- service: the service desk
---------------------------------------------------------------------------

CREATE TABLE service.tickets (
    id          int PRIMARY KEY GENERATED ALWAYS AS IDENTITY (START WITH 50001),
    customer_id text NOT NULL REFERENCES sales.customers,
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz,
    status      text NOT NULL CHECK (status IN ('open', 'waiting', 'closed')),
    priority    text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    channel     text NOT NULL,
    subject     text NOT NULL
);

-- 400 tickets over two years, from the customers who own machines more
-- often; the ones from the last three weeks are mostly still open.
INSERT INTO service.tickets (customer_id, opened_at, closed_at, status, priority, channel, subject)
SELECT c.id, t.opened,
       CASE WHEN t.opened < now() - interval '21 days' OR random() < 0.3
            THEN t.opened + (interval '1 hour' * (2 + floor(random() * 120))) END,
       'open', -- fixed below from closed_at
       (ARRAY['low', 'normal', 'normal', 'normal', 'high', 'urgent'])[1 + floor(random() * 6)::int],
       (ARRAY['phone', 'phone', 'email', 'web'])[1 + floor(random() * 4)::int],
       (ARRAY['Espresso machine leaking at the group head',
              'Grinder not dosing evenly',
              'Question about an invoice',
              'Delivery incomplete: cups missing',
              'Maintenance appointment',
              'Water filter replacement due',
              'Milk frother does not heat',
              'Barista training dates',
              'Machine shows error E05',
              'Wrong syrup delivered',
              'Request for a quote: second grinder',
              'Damaged parcel'])[1 + floor(random() * 12)::int]
  FROM generate_series(1, 400) AS g
 CROSS JOIN LATERAL (SELECT now() - (interval '1 minute' * floor(random() * 730 * 24 * 60)) + interval '0' * g AS opened) t
 CROSS JOIN LATERAL (
        SELECT id FROM sales.customers
         WHERE since <= t.opened::date
         ORDER BY -ln(1 - random()) / (order_weight * CASE WHEN segment IN ('cafe', 'hotel', 'restaurant') THEN 2 ELSE 1 END)
         LIMIT 1) c
 ORDER BY t.opened;

INSERT INTO service.tickets (customer_id, opened_at, closed_at, status, priority, channel, subject) VALUES
 ('C1001', now() - interval '2 hours',  NULL, 'open',    'urgent', 'phone', 'New 2-group machine: steam wand leaking'),
 ('C1001', now() - interval '9 days',   now() - interval '8 days', 'closed', 'normal', 'email', 'Barista training: confirm date'),
 ('C1012', now() - interval '5 days',   NULL, 'waiting', 'normal', 'phone', 'Question about reminder fees'),
 ('C1013', now() - interval '1 day',    NULL, 'open',    'high',   'web',   'Bean-to-cup machine in the lobby shows error E05');

UPDATE service.tickets
   SET status = CASE WHEN closed_at IS NOT NULL THEN 'closed'
                     WHEN id % 4 = 0 THEN 'waiting' ELSE 'open' END
 WHERE status = 'open' AND id < (SELECT max(id) - 3 FROM service.tickets);

CREATE INDEX tickets_customer ON service.tickets (customer_id, opened_at DESC);

---------------------------------------------------------------------------
-- sales: what a customer is worth
---------------------------------------------------------------------------

-- Revenue booked before the two years of orders kept above: the old ERP's
-- total per customer, migrated once. Customers younger than the order
-- history have none.
CREATE TABLE sales.revenue_before (
    customer_id text PRIMARY KEY REFERENCES sales.customers,
    through     date NOT NULL,           -- the day before the order history starts
    amount      numeric(12,2) NOT NULL,  -- in the customer's currency
    currency    char(3) NOT NULL
);

-- What they bought a year in the order history, times the years before it,
-- a little less (customers grow): 60-89 %, fixed per customer.
INSERT INTO sales.revenue_before (customer_id, through, amount, currency)
SELECT c.id, current_date - 731,
       round(coalesce(nullif(h.yearly, 0), 300 * fx.per_eur)
             * ((current_date - 730) - c.since) / 365.0
             * (0.60 + (abs(hashtext(c.id || 'ltv')) % 30) / 100.0), 2),
       c.currency
  FROM sales.customers c
  JOIN sales.fx ON fx.currency = c.currency
  LEFT JOIN (SELECT o.customer_id, sum(l.amount) / 2 AS yearly
               FROM sales.orders o JOIN sales.order_lines l ON l.order_id = o.id
              WHERE o.status <> 'cancelled'
              GROUP BY o.customer_id) h ON h.customer_id = c.id
 WHERE c.since < current_date - 730;

-- Tiers by the revenue of the last 12 months, in EUR.
CREATE TABLE sales.tiers (
    tier            text PRIMARY KEY,
    min_revenue_eur numeric(12,2) NOT NULL UNIQUE
);
INSERT INTO sales.tiers VALUES
 ('Platinum', 10000), ('Gold', 5000), ('Silver', 1500), ('Bronze', 0);

-- What the card's customer value section shows. Revenue is what was
-- ordered and not cancelled, in the customer's currency; the trend
-- compares the last 12 months with the 12 before (annualised when the
-- customer joined during those, if at least half a year before).
CREATE VIEW sales.customer_value AS
WITH revenue AS (
    SELECT c.id AS customer_id,
           coalesce(sum(l.amount) FILTER (WHERE o.ordered_at > current_date - 365), 0) AS last_12m,
           coalesce(sum(l.amount) FILTER (WHERE o.ordered_at <= current_date - 365
                                            AND o.ordered_at > current_date - 730), 0) AS previous_12m,
           coalesce(sum(l.amount), 0) AS ordered
      FROM sales.customers c
      LEFT JOIN sales.orders o ON o.customer_id = c.id AND o.status <> 'cancelled'
      LEFT JOIN sales.order_lines l ON l.order_id = o.id
     GROUP BY c.id
)
SELECT c.id AS customer_id,
       c.currency,
       c.since AS customer_since,
       (r.ordered + coalesce(b.amount, 0))::numeric(12,2) AS lifetime_value,
       r.last_12m::numeric(12,2) AS revenue_12m,
       r.previous_12m::numeric(12,2) AS revenue_previous_12m,
       t.tier,
       CASE WHEN r.last_12m = 0 AND r.previous_12m = 0
            THEN CASE WHEN c.since > current_date - 730 THEN 'no orders yet' ELSE 'no orders in the last 24 months' END
            WHEN c.since > current_date - 365 THEN 'new customer: first 12 months'
            WHEN c.since > current_date - 548 THEN 'new customer: no full year to compare'
            WHEN r.last_12m = 0 THEN 'no orders in the last 12 months'
            WHEN r.previous_12m = 0
            THEN CASE WHEN c.since > current_date - 730 THEN 'first orders in the last 12 months'
                      ELSE 'ordering again after 12 months without orders' END
            WHEN ch.pct >= 10 THEN 'up ' || round(ch.pct) || '% on the ' || ch.before
            WHEN ch.pct <= -10 THEN 'down ' || round(-ch.pct) || '% on the ' || ch.before
            ELSE 'steady (' || CASE WHEN ch.pct < 0 THEN '-' ELSE '+' END || round(abs(ch.pct))
                 || '% on the ' || ch.before || ')' END AS trend
  FROM sales.customers c
  JOIN revenue r ON r.customer_id = c.id
  JOIN sales.fx ON fx.currency = c.currency
  LEFT JOIN sales.revenue_before b ON b.customer_id = c.id
 CROSS JOIN LATERAL (
        -- A customer for part of the 12 months before: what they would
        -- have bought in the whole year at that rate.
        SELECT 100 * (r.last_12m - y.previous) / nullif(y.previous, 0) AS pct,
               CASE WHEN c.since > current_date - 730 THEN 'year before (part-year, annualised)'
                    ELSE 'previous 12 months' END AS before
          FROM (SELECT r.previous_12m * 365.0 / least(365, greatest(1, (current_date - 365) - c.since)) AS previous) y) ch
 CROSS JOIN LATERAL (
        SELECT tier FROM sales.tiers
         WHERE min_revenue_eur <= r.last_12m / fx.per_eur
         ORDER BY min_revenue_eur DESC
         LIMIT 1) t;

---------------------------------------------------------------------------
-- service: machines at customers, service cases, warranty claims
---------------------------------------------------------------------------

-- Every machine we delivered, by serial number: one per unit of a
-- delivered order line of a machine, and the machines customers had from
-- us before the order history (cafés, restaurants, hotels and offices with
-- us longer than that). Machines are under warranty for 24 months.
CREATE TABLE service.installed_base (
    serial         text PRIMARY KEY,
    customer_id    text NOT NULL REFERENCES sales.customers,
    sku            text NOT NULL REFERENCES sales.products,
    order_id       int REFERENCES sales.orders,   -- none: before the order history
    delivered_on   date NOT NULL,
    warranty_until date NOT NULL
);

INSERT INTO service.installed_base (serial, customer_id, sku, order_id, delivered_on, warranty_until)
SELECT replace(substr(m.sku, 4), '-', '') || '-' || to_char(m.delivered_on, 'YYMM') || '-'
         || lpad((10000 + row_number() OVER (ORDER BY m.delivered_on, m.customer_id, m.sku, m.unit))::text, 5, '0'),
       m.customer_id, m.sku, m.order_id, m.delivered_on, (m.delivered_on + interval '24 months')::date
  FROM (SELECT o.customer_id, l.sku, o.id AS order_id, o.ordered_at + 2 AS delivered_on, u.unit
          FROM sales.orders o
          JOIN sales.order_lines l ON l.order_id = o.id
          JOIN sales.products p ON p.sku = l.sku
         CROSS JOIN LATERAL generate_series(1, l.quantity) AS u(unit)
         WHERE p.category = 'Machines' AND o.status = 'delivered'
        UNION ALL
        SELECT c.id,
               CASE c.segment WHEN 'cafe' THEN CASE WHEN c.order_weight >= 3 THEN 'MA-ESP-2G' ELSE 'MA-ESP-1G' END
                              WHEN 'restaurant' THEN 'MA-ESP-1G'
                              ELSE 'MA-BTC-AUT' END,
               NULL, c.since + 14 + abs(hashtext(c.id || 'machine')) % 60, 1
          FROM sales.customers c
         WHERE c.kind = 'company'
           AND c.segment IN ('cafe', 'restaurant', 'hotel', 'office')
           AND c.since < current_date - 800) m;

CREATE INDEX installed_base_customer ON service.installed_base (customer_id);

-- Service cases: a technician's visit or a repair in our workshop, for one
-- machine. Closed cases are kept.
CREATE TABLE service.cases (
    case_no     text PRIMARY KEY,
    serial      text NOT NULL REFERENCES service.installed_base,
    customer_id text NOT NULL REFERENCES sales.customers,
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz,
    status      text NOT NULL CHECK (status IN ('new', 'technician booked', 'in workshop', 'awaiting parts',
                                                'quote sent', 'closed')),
    issue       text NOT NULL
);

-- About one case per machine and year of use, at random times; a case is
-- closed within three weeks, so the open ones are the recent ones.
INSERT INTO service.cases (case_no, serial, customer_id, opened_at, closed_at, status, issue)
SELECT 'SC-' || to_char(x.opened_at, 'YY') || '-' || lpad((row_number() OVER (ORDER BY x.opened_at, x.serial))::text, 5, '0'),
       x.serial, x.customer_id, x.opened_at,
       CASE WHEN x.opened_at + x.takes < now() THEN x.opened_at + x.takes END,
       CASE WHEN x.opened_at + x.takes < now() THEN 'closed'
            ELSE (ARRAY['new', 'technician booked', 'in workshop', 'awaiting parts', 'quote sent'])[1 + floor(x.r * 5)::int] END,
       x.issue
  FROM (SELECT b.serial, b.customer_id,
               b.delivered_on + (interval '1 minute' * floor(random() * (current_date - b.delivered_on) * 24 * 60)) AS opened_at,
               interval '1 hour' * (4 + floor(random() * 20 * 24)) AS takes,
               random() AS r,
               (ARRAY['Leaking at the group head', 'Pump noisy, low pressure', 'Error E05 on the display',
                      'Grinder burrs worn', 'Steam wand does not heat', 'Annual maintenance due',
                      'Water filter bypass leaking', 'Does not switch on', 'Inconsistent dosing'])[1 + floor(random() * 9)::int] AS issue
          FROM service.installed_base b
         CROSS JOIN generate_series(1, 4) AS k
         WHERE random() < (current_date - b.delivered_on) / 365.0 / 4) x
 WHERE x.opened_at < now();

-- Warranty claims: a part or a machine the manufacturer replaces, filed
-- with a case on a machine under warranty (most such cases). A claim is
-- decided within about six weeks: approved, or rejected (wear and
-- tear, descaling neglected).
CREATE TABLE service.warranty_claims (
    claim_no    text PRIMARY KEY,
    serial      text NOT NULL REFERENCES service.installed_base,
    customer_id text NOT NULL REFERENCES sales.customers,
    case_no     text REFERENCES service.cases,
    opened_at   timestamptz NOT NULL,
    decided_at  timestamptz,
    status      text NOT NULL CHECK (status IN ('submitted', 'with the manufacturer', 'approved: part on its way',
                                                'approved', 'rejected')),
    part        text NOT NULL
);

INSERT INTO service.warranty_claims (claim_no, serial, customer_id, case_no, opened_at, decided_at, status, part)
SELECT 'WC-' || to_char(x.opened_at, 'YY') || '-' || lpad((row_number() OVER (ORDER BY x.opened_at, x.case_no))::text, 4, '0'),
       x.serial, x.customer_id, x.case_no, x.opened_at,
       CASE WHEN x.opened_at + x.takes < now() THEN x.opened_at + x.takes END,
       CASE WHEN x.opened_at + x.takes >= now()
            THEN (ARRAY['submitted', 'with the manufacturer', 'approved: part on its way'])[1 + floor(x.r * 3)::int]
            WHEN x.r < 0.2 THEN 'rejected' ELSE 'approved' END,
       x.part
  FROM (SELECT c.case_no, c.serial, c.customer_id,
               c.opened_at + interval '1 hour' * floor(random() * 30) AS opened_at,
               interval '1 day' * (10 + floor(random() * 35)) AS takes,
               random() AS r,
               CASE WHEN c.issue LIKE 'Pump%' THEN 'Vibration pump'
                    WHEN c.issue LIKE 'Error%' OR c.issue LIKE 'Does not%' THEN 'Control board'
                    WHEN c.issue LIKE 'Steam%' THEN 'Heating element'
                    WHEN c.issue LIKE 'Grinder%' OR c.issue LIKE 'Inconsistent%' THEN 'Grinder motor'
                    ELSE 'Valve and seals' END AS part
          FROM service.cases c
          JOIN service.installed_base b ON b.serial = c.serial
         WHERE c.opened_at::date <= b.warranty_until
           AND c.issue <> 'Annual maintenance due'
           AND random() < 0.7) x
 WHERE x.opened_at < now();

-- The stories of README.md, whatever the draws above gave: Café Morgenrot's
-- new 2-group machine leaks from the steam wand (a case and a claim
-- opened this morning, with the urgent ticket); the Grand Hotel's lobby
-- machine, long out of warranty, shows error E05 (a technician is booked,
-- the repair is chargeable); Bäckerei Krume's old machine waits for their
-- approval of a quote; Dr. Müller's new home machine is in the workshop
-- and its pump claimed under warranty.
INSERT INTO service.cases (case_no, serial, customer_id, opened_at, status, issue)
SELECT v.case_no, b.serial, b.customer_id, date_trunc('minute', now()) - v.ago, v.status, v.issue
  FROM (VALUES ('SC-' || to_char(now(), 'YY') || '-90001', 'C1001', 'MA-ESP-2G', true, interval '2 hours', 'new',
                'Steam wand leaking at the valve'),
               ('SC-' || to_char(now(), 'YY') || '-90002', 'C1013', 'MA-BTC-AUT', false, interval '1 day', 'technician booked',
                'Error E05 on the display (lobby machine)'),
               ('SC-' || to_char(now(), 'YY') || '-90003', 'C1012', 'MA-ESP-2G', false, interval '16 days', 'quote sent',
                'Pump noisy, low pressure: pump replacement quoted'),
               ('SC-' || to_char(now(), 'YY') || '-90004', 'P2001', 'MA-HOME-01', true, interval '9 days', 'in workshop',
                'Pump noisy, low pressure'))
       AS v(case_no, customer_id, sku, newest, ago, status, issue)
 CROSS JOIN LATERAL (          -- the newest machine of its kind, or the oldest
        SELECT serial, customer_id FROM service.installed_base
         WHERE customer_id = v.customer_id AND sku = v.sku
         ORDER BY CASE WHEN v.newest THEN current_date - delivered_on ELSE delivered_on - current_date END
         LIMIT 1) b;

INSERT INTO service.warranty_claims (claim_no, serial, customer_id, case_no, opened_at, status, part)
SELECT 'WC-' || to_char(now(), 'YY') || '-' || v.claim, c.serial, c.customer_id, c.case_no, c.opened_at + v.later,
       v.status, v.part
  FROM (VALUES ('9001', '90001', interval '30 minutes', 'submitted', 'Steam valve'),
               ('9002', '90004', interval '1 day', 'with the manufacturer', 'Vibration pump'))
       AS v(claim, case_no, later, status, part)
  JOIN service.cases c ON c.case_no = 'SC-' || to_char(now(), 'YY') || '-' || v.case_no;

CREATE INDEX cases_customer ON service.cases (customer_id, opened_at);
CREATE INDEX warranty_claims_customer ON service.warranty_claims (customer_id, opened_at);

ANALYZE;

COMMIT;
